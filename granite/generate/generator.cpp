#include "granite/generate/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "granite/core/check.h"

namespace granite {

std::vector<int64_t> generate(CausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                              const GenerationOptions& options, const std::function<void(int64_t)>& on_token) {
  const ModelConfig& cfg = model.config();
  GRANITE_CHECK(!prompt_ids.empty(), "generate: the prompt is empty");
  GRANITE_CHECK(options.max_new_tokens >= 0, "max_new_tokens (", options.max_new_tokens, ") must be >= 0");
  for (int64_t id : prompt_ids) {
    GRANITE_CHECK(id >= 0 && id < cfg.vocab_size, "prompt token id ", id, " is outside the vocabulary [0, ",
                  cfg.vocab_size, ")");
  }
  const int64_t P = int64_t(prompt_ids.size()), total = P + options.max_new_tokens;
  if (cfg.architecture == Architecture::GPTBigCode) {
    GRANITE_CHECK(total <= cfg.max_position_embeddings, "prompt (", P, ") + max_new_tokens (",
                  options.max_new_tokens, ") exceeds the model's n_positions (", cfg.max_position_embeddings, ")");
  }
  GRANITE_CHECK(options.stop_strings.empty() || options.decode, "stop strings need a decode function (a tokenizer)");
  std::vector<int64_t> out;
  if (options.max_new_tokens == 0) return out;
  std::vector<int64_t> seen = prompt_ids;  // for the repetition penalty
  auto hit_stop_string = [&] {
    if (options.stop_strings.empty()) return false;
    const std::string text = options.decode(out);
    for (const std::string& s : options.stop_strings)
      if (!s.empty() && text.find(s) != std::string::npos) return true;
    return false;
  };

  const torch::Tensor first = model.parameters().front();
  const auto device = first.device();
  const auto dtype = first.scalar_type();
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  KVCache cache(cfg, /*batch_size=*/1, total, dtype, device);
  auto ids_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);

  // prefill: the whole prompt in one forward; then decode one token per forward against the cache.
  auto logits = model.forward(torch::tensor(prompt_ids, torch::kInt64).to(device).unsqueeze(0), {}, &cache);
  while (true) {
    torch::Tensor row = logits.select(1, logits.size(1) - 1);
    if (options.repetition_penalty != 1.0) row = penalize_repeats(row, seen, options.repetition_penalty);
    const int64_t next = sample_token(row, options.sampling, generator);
    out.push_back(next);
    seen.push_back(next);
    if (on_token) on_token(next);
    const bool stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end() ||
                      hit_stop_string();
    if (stop || int64_t(out.size()) == options.max_new_tokens) break;
    logits = model.forward(torch::full({1, 1}, next, ids_opts), {}, &cache);
  }
  model.train(was_training);
  return out;
}

}  // namespace granite
