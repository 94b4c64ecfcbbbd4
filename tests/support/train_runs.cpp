#include "support/train_runs.h"

#include <catch2/catch.hpp>

#include "granite/train/train_step.h"

namespace granite::test {

std::vector<double> train_losses(CausalLMImpl& model, const std::vector<TrainBatch>& batches,
                                 c10::ScalarType compute_dtype, double lr) {
  ParameterBuffers params(model, OptimizerConfig{}, compute_dtype);
  AdamW adamw(params, OptimizerConfig{});
  TrainStepOptions so;
  so.lr = lr;
  const torch::Device device = model.parameters().front().device();
  std::vector<double> losses;
  for (const TrainBatch& b : batches) {
    const TrainBatch on_device{b.input_ids.to(device), b.labels.to(device), b.objectives.to(device),
                               b.position_ids.to(device), b.segment_ids.to(device)};
    losses.push_back(train_step(model, params, adamw, {on_device}, so).loss);
  }
  for (const auto& g : params.groups()) CHECK(torch::equal(g.compute, g.master.to(g.compute.scalar_type())));
  return losses;
}

void check_mixed_tracks_fp32(const std::vector<double>& fp32, const std::vector<double>& mixed) {
  REQUIRE(fp32.size() == mixed.size());
  CHECK(fp32.back() < fp32.front() - 1.0);
  for (size_t i = 0; i < fp32.size(); ++i) {
    INFO("step " << i << ": fp32 " << fp32[i] << ", mixed " << mixed[i]);
    CHECK(mixed[i] == Approx(fp32[i]).epsilon(0.01));
  }
}

}  // namespace granite::test
