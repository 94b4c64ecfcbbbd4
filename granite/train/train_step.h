#pragma once
// One optimizer step over the micro-batches of a global batch (the library owns the step, apps own the loop):
//   1. count the objectives of the whole global batch (the loss normalisation; with several ranks the counts are
//      all-reduced first),
//   2. per micro-batch: trunk forward (document mask optional) -> fused alpha-weighted loss -> backward (gradients
//      accumulate, each micro-batch's loss already scaled as its share of the global mean),
//      Gradients land in the flat fp32 (master-dtype) buffers of ParameterBuffers, whatever the compute dtype,
//   3. global gradient norm; a non-finite norm or loss skips the update (gradients dropped, counted by the caller),
//   4. clip to grad_clip, AdamW step at the given learning rate (which also refreshes the compute weights).
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/dist/gradient_sync.h"
#include "granite/models/causal_lm.h"
#include "granite/train/adamw.h"
#include "granite/train/batch.h"
#include "granite/train/objective_loss.h"
#include "granite/train/parameter_buffers.h"

namespace granite {

struct TrainStepOptions {
  double alpha = 0.5;           // CLM weight; FIM gets 1 - alpha
  double grad_clip = 1.0;       // 0 = no clipping
  double lr = 3e-4;
  bool document_mask = true;    // attention and positions per packed document; false: the row as one causal sequence
  int64_t loss_chunk_rows = 2048;
  // Data parallelism: this rank's micro-batches are its share of the global batch. The objective counts are summed
  // over ranks before the micro-batches (so every rank's loss is its share of the global mean), the fp32 gradients
  // after them (SUM: the shares add up to the global gradient), and the loss report for logging. nullptr: one rank.
  Communicator* comm = nullptr;
  // With comm: the gradient all-reduce runs in buckets during the last micro-batch's backward (overlapped); without
  // it, as one all-reduce after backward. Same sums either way. Fully sharded parameters (ParameterBuffers'
  // fully_sharded()) need neither: their gradients are reduce-scattered block by block during each backward.
  GradientSync* grad_sync = nullptr;
};

struct StepResult {
  LossReport report;            // L, L_CLM, L_FIM and token counts of the global batch
  double loss = 0;              // report.loss(alpha)
  double grad_norm = 0;         // before clipping
  bool skipped = false;         // non-finite loss or gradient: no update
  int64_t tokens = 0;           // input tokens this rank processed (rows x seq_len over its micro-batches)
};

// `params` must be the buffers of `model`, `optimizer` the AdamW over them.
StepResult train_step(CausalLMImpl& model, ParameterBuffers& params, AdamW& optimizer,
                      const std::vector<TrainBatch>& micro, const TrainStepOptions& options);

// Loss of a batch without gradients (validation), same normalisation within the batches given.
LossReport evaluate_loss(CausalLMImpl& model, const std::vector<TrainBatch>& batches, double alpha,
                         bool document_mask = true, int64_t loss_chunk_rows = 2048);

}  // namespace granite
