#pragma once
// Short training runs for the precision tests (CPU and CUDA): the same model, data and schedule under two
// precision policies, and the check that mixed precision tracks fp32.
#include <vector>

#include "granite/models/causal_lm.h"
#include "granite/train/batch.h"

namespace granite::test {

// One train_step per batch (moved to the model's device) at `lr`, with parameters in `compute_dtype` and fp32
// master weights; CHECKs afterwards that the model holds the master's rounding. Returns the losses.
std::vector<double> train_losses(CausalLMImpl& model, const std::vector<TrainBatch>& batches,
                                 c10::ScalarType compute_dtype, double lr = 3e-3);

// The fp32 run learned (loss down by more than 1 nat) and the mixed run's loss is within 1% of it at every step.
void check_mixed_tracks_fp32(const std::vector<double>& fp32, const std::vector<double>& mixed);

}  // namespace granite::test
