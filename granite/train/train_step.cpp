#include "granite/train/train_step.h"

#include <torch/nn/utils/clip_grad.h>

#include <cmath>

#include "granite/core/check.h"
#include "granite/train/optimizer.h"

namespace granite {

namespace {

ObjectiveLoss micro_loss(CausalLMImpl& model, const TrainBatch& b, const ObjectiveCounts& global, double alpha,
                         bool document_mask, int64_t chunk_rows) {
  const torch::Tensor mask = document_mask ? document_causal_mask(b.segment_ids) : torch::Tensor();
  const torch::Tensor hidden = model.hidden_states(b.input_ids, b.position_ids, mask);
  return objective_loss(hidden, model.lm_head_weight(), torch::Tensor(), b.labels, b.objectives, global, alpha,
                        chunk_rows);
}

}  // namespace

StepResult train_step(CausalLMImpl& model, torch::optim::Optimizer& optimizer, const std::vector<TrainBatch>& micro,
                      const TrainStepOptions& o) {
  GRANITE_CHECK(!micro.empty(), "train_step needs at least one micro-batch");
  model.train();
  ObjectiveCounts global;
  for (const TrainBatch& b : micro) global += count_objectives(b.objectives);
  optimizer.zero_grad();
  StepResult r;
  for (const TrainBatch& b : micro) {
    ObjectiveLoss out = micro_loss(model, b, global, o.alpha, o.document_mask, o.loss_chunk_rows);
    out.loss.backward();
    r.report.add(out);
    r.tokens += b.input_ids.numel();
  }
  r.loss = r.report.loss(o.alpha);
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined()) params.push_back(p);
  // The norm before clipping (what is logged); clipping with an infinite bound only measures.
  r.grad_norm = torch::nn::utils::clip_grad_norm_(params, o.grad_clip > 0 ? o.grad_clip : INFINITY);
  if (!std::isfinite(r.grad_norm) || !std::isfinite(r.loss)) {
    r.skipped = true;
    optimizer.zero_grad();
    return r;
  }
  set_learning_rate(optimizer, o.lr);
  optimizer.step();
  return r;
}

LossReport evaluate_loss(CausalLMImpl& model, const std::vector<TrainBatch>& batches, double alpha,
                         bool document_mask, int64_t chunk_rows) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  ObjectiveCounts global;
  for (const TrainBatch& b : batches) global += count_objectives(b.objectives);
  LossReport report;
  for (const TrainBatch& b : batches) report.add(micro_loss(model, b, global, alpha, document_mask, chunk_rows));
  model.train(was_training);
  return report;
}

}  // namespace granite
