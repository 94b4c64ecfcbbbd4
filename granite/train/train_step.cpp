#include "granite/train/train_step.h"

#include <cmath>

#include "granite/core/check.h"

namespace granite {

namespace {

ObjectiveLoss micro_loss(CausalLMImpl& model, const TrainBatch& b, const ObjectiveCounts& global, double alpha,
                         bool document_mask, int64_t chunk_rows) {
  // Packed documents either each see only themselves (mask, positions restarting per document) or the whole row
  // causally with positions 0..T-1 (Megatron-LM's and fms-fsdp's default: no reset of positions or attention; the
  // fast path, since plain causal attention runs as the flash kernel).
  const torch::Tensor mask = document_mask ? document_causal_mask(b.segment_ids) : torch::Tensor();
  const torch::Tensor hidden = model.hidden_states(b.input_ids, document_mask ? b.position_ids : torch::Tensor(), mask);
  return objective_loss(hidden, model.lm_head_weight(), torch::Tensor(), b.labels, b.objectives, global, alpha,
                        chunk_rows);
}

}  // namespace

StepResult train_step(CausalLMImpl& model, ParameterBuffers& params, AdamW& optimizer,
                      const std::vector<TrainBatch>& micro, const TrainStepOptions& o) {
  GRANITE_CHECK(!micro.empty(), "train_step needs at least one micro-batch");
  model.train();
  ObjectiveCounts global;
  for (const TrainBatch& b : micro) global += count_objectives(b.objectives);
  if (o.comm) {
    const auto sums = o.comm->sum({double(global.clm), double(global.fim)}, "objective counts");
    global.clm = int64_t(sums[0]);
    global.fim = int64_t(sums[1]);
  }
  params.zero_grad();
  StepResult r;
  for (size_t m = 0; m < micro.size(); ++m) {
    const TrainBatch& b = micro[m];
    if (o.grad_sync) o.grad_sync->begin_micro_batch(m + 1 == micro.size());
    ObjectiveLoss out = micro_loss(model, b, global, o.alpha, o.document_mask, o.loss_chunk_rows);
    out.loss.backward();
    if (FullySharded* units = params.fully_sharded()) units->finish_backward();  // gradients reduce-scattered
    r.report.add(out);
    r.tokens += b.input_ids.numel();
  }
  if (o.comm) {
    if (params.is_fully_sharded()) {
      // nothing left: each unit's gradients were reduce-scattered during backward
    } else if (o.grad_sync) {
      o.grad_sync->finish();
    } else {
      std::vector<torch::Tensor> buckets;  // 128 MB fp32 buckets of the flat gradient buffers
      for (auto& g : params.groups())
        for (const auto& chunk : flat_chunks(g.grad, int64_t(1) << 25)) buckets.push_back(chunk);
      o.comm->all_reduce_sum(buckets, "gradient all-reduce");
    }
    const auto sums = o.comm->sum({r.report.clm_sum, r.report.fim_sum, double(r.report.tokens.clm),
                                   double(r.report.tokens.fim)}, "loss report");
    r.report.clm_sum = sums[0];
    r.report.fim_sum = sums[1];
    r.report.tokens.clm = int64_t(sums[2]);
    r.report.tokens.fim = int64_t(sums[3]);
  }
  r.loss = r.report.loss(o.alpha);
  r.grad_norm = params.grad_norm();  // before clipping: what is logged
  if (!std::isfinite(r.grad_norm) || !std::isfinite(r.loss)) {
    r.skipped = true;
    params.zero_grad();
    return r;
  }
  // torch.nn.utils.clip_grad_norm_'s rule: scale by max_norm / (norm + 1e-6) when that is below 1.
  const double coefficient = o.grad_clip / (r.grad_norm + 1e-6);
  if (o.grad_clip > 0 && coefficient < 1.0) params.scale_grad(coefficient);
  optimizer.step(o.lr);
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
