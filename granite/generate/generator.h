#pragma once
// Prefill + decode over the model's single forward with a preallocated KV cache (gpt-fast's prefill / decode_one /
// sample split). Stops at stop ids, stop strings or max_new_tokens; an optional repetition penalty shapes the logits
// before sampling.
//
// Batches: prompts of different lengths are left-padded to the longest, as HF generate does for decoder-only
// models. Every row keeps its own positions (0 at its first real token), its pad keys are masked out of attention,
// and it stops on its own; a row that stopped idles until the last one does. Row b samples with its own generator
// seeded seed + b, so a batch gives exactly what each prompt gives alone with that seed (greedy: the same argmax).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "granite/generate/sampler.h"
#include "granite/models/causal_lm.h"

namespace granite {

// How decode steps run after the prefill (granite/generate/static_decode.h).
enum class DecodeSteps {
  Auto,       // CudaGraph on CUDA, Dynamic elsewhere
  Dynamic,    // a forward over the cache's filled part, shapes growing by one each step
  Static,     // static shapes (whole cache, masked), run eagerly: what the graph records
  CudaGraph,  // static shapes captured once in a CUDA graph and replayed (Static on CPU)
};

struct GenerationOptions {
  int64_t max_new_tokens = 32;
  SamplingOptions sampling;
  uint64_t seed = 0;
  std::vector<int64_t> stop_ids;  // generation ends after emitting one of these (it is included in the output)
  double repetition_penalty = 1.0;  // > 1 discourages every id already in the prompt or the output (HF's)
  // Generation also ends once the decoded output contains one of these (the tokens that completed it included, as
  // HF's stop_strings); needs `decode` (ids -> text, e.g. the tokenizer's).
  std::vector<std::string> stop_strings;
  std::function<std::string(const std::vector<int64_t>&)> decode;
  // Batches: row b samples with row_seeds[b] when given (one per prompt), else with seed + b.
  std::vector<uint64_t> row_seeds;
  DecodeSteps decode_steps = DecodeSteps::Auto;
};

// Returns the new token ids only. `on_token`, if set, is called with each id as soon as it is chosen (streaming).
std::vector<int64_t> generate(CausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                              const GenerationOptions& options,
                              const std::function<void(int64_t)>& on_token = nullptr);

// Several prompts at once; result b holds row b's new ids. `on_token(b, id)` streams as above.
std::vector<std::vector<int64_t>> generate_batch(CausalLMImpl& model,
                                                 const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options,
                                                 const std::function<void(size_t, int64_t)>& on_token = nullptr);

}  // namespace granite
