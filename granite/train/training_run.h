#pragma once
// The training loop both apps run (the library owns the step and the loop; apps own flags and data):
// build or load the model, resume from the latest checkpoint (or a named one), then per step: micro-batches from
// the batch source (pretraining's packed loader, or the app's: RunData) -> train_step at lr_at(step) -> metrics (metrics.jsonl, TensorBoard, a progress line) ->
// validation every eval_every -> a checkpoint every save_every and at the end. SIGTERM/SIGINT finish the current
// step, save a checkpoint and return. A run of non-finite steps longer than max_skipped_steps stops with an error;
// the last good checkpoint stays as it was.
//
// Resume is bit-exact on CPU: weights (fp32 safetensors), the AdamW state, the loader state (sequences are pure
// functions of their index) and the CPU RNG state are restored, and metrics.jsonl is cut back to the checkpoint's
// step so the resumed run appends exactly what the uninterrupted one wrote.
// With a Communicator (data parallelism, one process per device): every rank builds the same model, rank 0's
// weights are broadcast, each rank reads its share of every global batch (the batch source's rank/world), train_step
// sums objective counts and gradients over the ranks, and rank 0 alone writes metrics and progress. Checkpoints:
// rank 0 writes them (the others wait) -- except fully sharded runs (train.sharding "full"), where every rank writes
// its shards (granite/train/checkpoint_state.h). Either way a run resumes on any number of ranks, in any mode.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/train/batch_source.h"
#include "granite/train/train_config.h"

namespace granite {

// Instruction tuning's data (or any other): the training batches of one rank, resumed from a saved state() (null:
// from the start), and the validation batches. Unset: the packed loader over config.data / config.eval_data.
struct RunData {
  std::function<std::unique_ptr<BatchSource>(const Json* state, int rank, int world)> train;
  std::function<std::vector<PackedBatch>()> eval;
};

struct RunOptions {
  std::string resume = "auto";  // auto: the latest checkpoint if any; never: a fresh run (error if checkpoints
                                // exist: nothing is overwritten); otherwise a checkpoint directory
  bool progress = true;         // the progress line on stderr (rank 0 only)
  Communicator* comm = nullptr; // data-parallel ranks; nullptr: this process alone
  RunData data;                 // unset: pretraining's packed loader
  // Files placed in every checkpoint besides the tokenizer's (a file of the same name replaces the tokenizer
  // directory's): the instruction-tuning app's tokenizer_config.json with its chat template.
  std::vector<std::string> checkpoint_files;
};

struct RunResult {
  int64_t step = 0;               // steps done (the global step reached)
  std::string checkpoint;         // the last checkpoint written or resumed from
  double last_loss = 0;
  bool interrupted = false;       // stopped by SIGTERM / SIGINT (after saving)
  int64_t skipped_steps = 0;
};

RunResult run_training(const TrainConfig& config, const RunOptions& options = {});

// FLOPs per token of a training step (forward + backward): 6 N + 12 L d s (N parameters, L layers, d hidden size,
// s sequence length), the convention of the HF baseline (reference/hf_baseline_train_decode.py) and PaLM.
double training_flops_per_token(int64_t parameters, int64_t layers, int64_t hidden, int64_t seq_len);

}  // namespace granite
