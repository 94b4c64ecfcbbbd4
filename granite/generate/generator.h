#pragma once
// Prefill + decode over the model's single forward with a preallocated KV cache (gpt-fast's prefill / decode_one /
// sample split). One sequence at a time for now; batching is a later issue. Stops at stop ids, stop strings or
// max_new_tokens; an optional repetition penalty shapes the logits before sampling.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "granite/generate/sampler.h"
#include "granite/models/causal_lm.h"

namespace granite {

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
};

// Returns the new token ids only. `on_token`, if set, is called with each id as soon as it is chosen (streaming).
std::vector<int64_t> generate(CausalLMImpl& model, const std::vector<int64_t>& prompt_ids,
                              const GenerationOptions& options,
                              const std::function<void(int64_t)>& on_token = nullptr);

}  // namespace granite
