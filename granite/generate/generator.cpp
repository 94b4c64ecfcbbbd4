#include "granite/generate/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "granite/core/check.h"
#include "granite/generate/static_decode.h"
#include "granite/kernels/fused_ops.h"

namespace granite {

namespace {

void check_request(const ModelConfig& cfg, const std::vector<std::vector<int64_t>>& prompts,
                   const GenerationOptions& options, int64_t longest) {
  GRANITE_CHECK(!prompts.empty(), "generate: no prompts");
  GRANITE_CHECK(options.max_new_tokens >= 0, "max_new_tokens (", options.max_new_tokens, ") must be >= 0");
  for (size_t b = 0; b < prompts.size(); ++b) {
    GRANITE_CHECK(!prompts[b].empty(), "generate: prompt ", b, " is empty");
    for (int64_t id : prompts[b]) {
      GRANITE_CHECK(id >= 0 && id < cfg.vocab_size, "prompt token id ", id, " is outside the vocabulary [0, ",
                    cfg.vocab_size, ")");
    }
  }
  if (cfg.architecture == Architecture::GPTBigCode) {
    GRANITE_CHECK(longest + options.max_new_tokens <= cfg.max_position_embeddings, "prompt (", longest,
                  ") + max_new_tokens (", options.max_new_tokens, ") exceeds the model's n_positions (",
                  cfg.max_position_embeddings, ")");
  }
  GRANITE_CHECK(options.stop_strings.empty() || options.decode, "stop strings need a decode function (a tokenizer)");
  GRANITE_CHECK(options.row_seeds.empty() || options.row_seeds.size() == prompts.size(), "generate: ",
                options.row_seeds.size(), " row seeds for ", prompts.size(), " prompts");
}

// One row's bookkeeping: its output, what the repetition penalty sees, its generator, whether it stopped.
struct Row {
  std::vector<int64_t> out, seen;
  at::Generator generator;
  bool done = false;
};

bool hits_stop(const GenerationOptions& options, const Row& row, int64_t id) {
  if (std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end()) return true;
  if (options.stop_strings.empty()) return false;
  const std::string text = options.decode(row.out);
  for (const std::string& s : options.stop_strings)
    if (!s.empty() && text.find(s) != std::string::npos) return true;
  return false;
}

// The next id of every row from the last position's logits (B, V). Greedy without a penalty takes one batched
// argmax (one device -> host copy per step); otherwise rows are shaped and sampled one by one.
std::vector<int64_t> choose_next(const torch::Tensor& last, std::vector<Row>& rows, const GenerationOptions& options) {
  std::vector<int64_t> next(rows.size());
  if (options.sampling.greedy && options.repetition_penalty == 1.0) {
    const auto ids = last.argmax(-1).to(torch::kCPU);
    for (size_t b = 0; b < rows.size(); ++b) next[b] = ids[int64_t(b)].item<int64_t>();
    return next;
  }
  for (size_t b = 0; b < rows.size(); ++b) {
    if (rows[b].done) continue;
    torch::Tensor row = last[int64_t(b)];
    if (options.repetition_penalty != 1.0) row = penalize_repeats(row, rows[b].seen, options.repetition_penalty);
    next[b] = sample_token(row, options.sampling, rows[b].generator);
  }
  return next;
}

}  // namespace

std::vector<std::vector<int64_t>> generate_batch(CausalLMImpl& model,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options,
                                                 const std::function<void(size_t, int64_t)>& on_token) {
  const ModelConfig& cfg = model.config();
  const int64_t B = int64_t(prompts.size());
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
  check_request(cfg, prompts, options, longest);
  std::vector<std::vector<int64_t>> result(prompts.size());
  if (options.max_new_tokens == 0) return result;

  const torch::Tensor first = model.parameters().front();
  const auto device = first.device();
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t total = longest + options.max_new_tokens;
  KVCache cache(cfg, B, total, first.scalar_type(), device);
  const auto ids_opts = torch::TensorOptions().dtype(torch::kInt64);

  // Left padding: row b's real tokens occupy [pad[b], longest). Pad slots hold token 0, never attended as keys.
  std::vector<int64_t> pad(prompts.size());
  bool padded = false;
  auto input = torch::zeros({B, longest}, ids_opts);
  auto positions = torch::zeros({B, longest}, ids_opts);
  auto valid = torch::ones({B, total}, ids_opts.dtype(torch::kBool));  // key slot holds a real token
  std::vector<Row> rows(prompts.size());
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[size_t(b)];
    pad[size_t(b)] = longest - int64_t(p.size());
    padded |= pad[size_t(b)] > 0;
    input[b].narrow(0, pad[size_t(b)], int64_t(p.size())).copy_(torch::tensor(p, ids_opts));
    positions[b].narrow(0, pad[size_t(b)], int64_t(p.size())).copy_(torch::arange(int64_t(p.size()), ids_opts));
    valid[b].narrow(0, 0, pad[size_t(b)]).fill_(false);
    rows[size_t(b)].seen = p;
    const uint64_t seed = options.row_seeds.empty() ? options.seed + uint64_t(b) : options.row_seeds[size_t(b)];
    rows[size_t(b)].generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  }
  valid = valid.to(device);
  const auto pad_offsets = torch::tensor(pad, ids_opts).to(device).unsqueeze(1);  // (B, 1)

  // Prefill. With padding, the mask is causal AND (key real OR key == query): a pad query attends only itself, so
  // no softmax row is empty; real queries never see pads.
  torch::Tensor mask;
  if (padded) {
    const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);
    const auto causal = torch::ones({longest, longest}, bool_opts).tril();
    const auto self = torch::eye(longest, bool_opts);
    mask = causal.unsqueeze(0) & (valid.narrow(1, 0, longest).unsqueeze(1) | self.unsqueeze(0));  // (B, T, T)
    mask = mask.unsqueeze(1);
  }
  auto h = model.hidden_states(input.to(device), padded ? positions.to(device) : torch::Tensor(), mask, &cache);
  torch::Tensor last = kernels::linear(h.select(1, h.size(1) - 1), model.lm_head_weight());  // (B, V)
  DecodeSteps mode = options.decode_steps;
  if (mode == DecodeSteps::Auto) mode = device.is_cuda() ? DecodeSteps::CudaGraph : DecodeSteps::Dynamic;
  std::unique_ptr<StaticDecoder> fixed;
  // Greedy without a penalty needs nothing from the host between steps: the static step feeds its own argmax
  // forward on the device and runs one step ahead of the host's bookkeeping.
  const bool chained = options.sampling.greedy && options.repetition_penalty == 1.0;
  if (mode != DecodeSteps::Dynamic && options.max_new_tokens > 1)
    fixed = std::make_unique<StaticDecoder>(model, cache, valid, mode == DecodeSteps::CudaGraph, chained);
  int64_t live = B;
  // Records every live row's next id; returns how many rows are still live.
  auto take = [&](const std::vector<int64_t>& next) {
    for (size_t b = 0; b < rows.size(); ++b) {
      Row& row = rows[b];
      if (row.done) continue;
      row.out.push_back(next[b]);
      row.seen.push_back(next[b]);
      if (on_token) on_token(b, next[b]);
      if (hits_stop(options, row, next[b]) || int64_t(row.out.size()) == options.max_new_tokens) {
        row.done = true;
        --live;
      }
    }
    return live;
  };
  if (fixed && chained) {
    // The first id came from the prefill; each of the other max_new_tokens - 1 from one step. Stopped rows keep
    // being fed their argmax (rows are independent; their output no longer changes).
    if (take(choose_next(last, rows, options)) > 0) {
      std::vector<int64_t> step_ids(rows.size()), step_positions(rows.size());
      for (size_t b = 0; b < rows.size(); ++b) {
        step_ids[b] = rows[b].out.back();
        step_positions[b] = longest - pad[b];
      }
      fixed->start(step_ids, longest, step_positions);
      const int64_t steps = options.max_new_tokens - 1;
      int64_t queued = 0;
      fixed->queue_step();
      ++queued;
      do {
        if (queued < steps) {  // the next step goes out before this one's ids are read
          fixed->queue_step();
          ++queued;
        }
      } while (take(fixed->take_ids()) > 0);
    }
  } else {
    for (int64_t slot = longest;; ++slot) {
      if (take(choose_next(last, rows, options)) == 0) break;
      // Decode one position for every row (stopped rows feed their last id; their output no longer changes).
      std::vector<int64_t> step_ids(rows.size());
      for (size_t b = 0; b < rows.size(); ++b) step_ids[b] = rows[b].out.back();
      if (fixed) {  // this step writes cache slot `slot`; row b's position is slot - pad[b]
        std::vector<int64_t> step_positions(rows.size());
        for (size_t b = 0; b < rows.size(); ++b) step_positions[b] = slot - pad[b];
        last = fixed->step(step_ids, slot, step_positions);
        continue;
      }
      auto step = torch::tensor(step_ids, ids_opts).to(device).unsqueeze(1);
      torch::Tensor step_positions, step_mask;
      if (padded) {
        step_positions = slot - pad_offsets;                                 // (B, 1)
        step_mask = valid.narrow(1, 0, slot + 1).unsqueeze(1).unsqueeze(1);  // (B, 1, 1, slot + 1)
      }
      h = model.hidden_states(step, step_positions, step_mask, &cache);
      last = kernels::linear(h.select(1, 0), model.lm_head_weight());
    }
  }
  model.train(was_training);
  for (size_t b = 0; b < rows.size(); ++b) result[b] = std::move(rows[b].out);
  return result;
}

std::vector<int64_t> generate(CausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                              const GenerationOptions& options, const std::function<void(int64_t)>& on_token) {
  GRANITE_CHECK(!prompt_ids.empty(), "generate: the prompt is empty");
  std::function<void(size_t, int64_t)> stream;
  if (on_token) stream = [&on_token](size_t, int64_t id) { on_token(id); };
  return generate_batch(model, {prompt_ids}, options, stream).front();
}

}  // namespace granite
