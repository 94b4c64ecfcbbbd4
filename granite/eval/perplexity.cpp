#include "granite/eval/perplexity.h"

#include <torch/nn/functional/linear.h>

#include <algorithm>
#include <cmath>

#include "granite/core/check.h"

namespace granite {

double PerplexityResult::perplexity() const { return std::exp(loss()); }

namespace {

// Sum over rows of -log softmax(h W^T)[target] in fp32, `chunk` positions at a time, kept on the device (one read
// back per batch, not per chunk). h (N, C), targets (N). Returns a float64 scalar tensor.
torch::Tensor summed_nll(const torch::Tensor& h, const torch::Tensor& weight, const torch::Tensor& targets,
                         int64_t chunk) {
  auto sum = torch::zeros({}, h.options().dtype(torch::kFloat64));
  for (int64_t begin = 0; begin < h.size(0); begin += chunk) {
    const int64_t n = std::min(chunk, h.size(0) - begin);
    const auto logits = torch::nn::functional::linear(h.narrow(0, begin, n), weight).to(torch::kFloat32);
    const auto logp = logits.log_softmax(-1).gather(1, targets.narrow(0, begin, n).unsqueeze(1));
    sum -= logp.sum().to(torch::kFloat64);
  }
  return sum;
}

}  // namespace

PerplexityResult evaluate_perplexity(CausalLMImpl& model, const TokenStream& stream, const PerplexityOptions& options,
                                     const std::function<void(int64_t, int64_t)>& on_progress) {
  const ModelConfig& cfg = model.config();
  GRANITE_CHECK(options.seq_len >= 2, "perplexity: seq_len (", options.seq_len, ") must be >= 2");
  GRANITE_CHECK(options.batch_size >= 1, "perplexity: batch_size (", options.batch_size, ") must be >= 1");
  GRANITE_CHECK(options.logits_chunk >= 1, "perplexity: logits_chunk must be >= 1");
  if (cfg.architecture == Architecture::GPTBigCode) {
    GRANITE_CHECK(options.seq_len <= cfg.max_position_embeddings, "perplexity: seq_len (", options.seq_len,
                  ") exceeds the model's n_positions (", cfg.max_position_embeddings, ")");
  }
  int64_t total = stream.tokens_per_epoch();
  if (options.max_tokens > 0) total = std::min(total, options.max_tokens);
  const torch::Tensor first = model.parameters().front();
  const auto device = first.device();
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor weight = model.lm_head_weight();

  PerplexityResult result;
  std::vector<TokenId> tokens;
  for (int64_t position = 0; position < total;) {
    // Up to batch_size full windows; a shorter last window goes alone (every row of a batch has one length).
    const int64_t left = total - position;
    const int64_t len = std::min(options.seq_len, left);
    const int64_t rows = len == options.seq_len ? std::min(options.batch_size, left / options.seq_len) : 1;
    if (len < 2) break;  // a lone last token has nothing to be predicted from
    tokens.clear();
    stream.read(position, rows * len, tokens);
    const auto ids = torch::from_blob(tokens.data(), {rows, len}, torch::kInt32).to(torch::kInt64).to(device);
    const auto h = model.hidden_states(ids.narrow(1, 0, len - 1));  // (rows, len - 1, C)
    const auto targets = ids.narrow(1, 1, len - 1).reshape({-1});
    result.nll_sum += summed_nll(h.reshape({-1, h.size(-1)}), weight, targets, options.logits_chunk).item<double>();
    result.predicted += rows * (len - 1);
    result.windows += rows;
    position += rows * len;
    if (on_progress) on_progress(position, total);
  }
  model.train(was_training);
  return result;
}

}  // namespace granite
