#pragma once
// Next-token choice from one row of logits. Greedy is argmax; sampling applies temperature, then top-k, then top-p
// (nucleus), then draws with an explicit CPU generator so results depend only on the seed, not the device.
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace granite {

struct SamplingOptions {
  bool greedy = true;
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
};

// HF's RepetitionPenaltyLogitsProcessor (Keskar et al. 2019, CTRL): the logit of every id in `seen` (prompt and
// generated so far) is divided by `penalty` when positive, multiplied when negative. Returns a float32 CPU row
// (V); penalty 1 changes nothing.
torch::Tensor penalize_repeats(const torch::Tensor& logits, const std::vector<int64_t>& seen, double penalty);

// logits: (V) or (1, V), any device/dtype. Returns the chosen token id.
int64_t sample_token(const torch::Tensor& logits, const SamplingOptions& options, at::Generator& generator);

}  // namespace granite
