#pragma once
// A checkpoint's training state read by key and element range, whichever layout wrote it, so that any checkpoint
// resumes on any number of ranks in any sharding mode:
//   whole   (one process, data parallel, ZeRO-1; rank 0 writes): the model weights (model.safetensors, or shards
//           with an index) and optimizer.safetensors (exp_avg.<name>, exp_avg_sq.<name>, master.<name> with mixed
//           precision, the optimizer's step in its metadata);
//   sharded (fully sharded runs; every rank writes its own): state-RRRRR-of-WWWWW.safetensors, rank R's pieces
//           of every tensor as 1-D "<key>@<begin>" (elements [begin, begin + length) of the flattened tensor), with
//           metadata format "granite.sharded", the step, and every parameter's shape ("shapes", JSON).
// Keys: "master.<name>" -- the master weights (fp32 with mixed precision; in a whole checkpoint without fp32 master
// copies, the model weights themselves) -- "exp_avg.<name>" and "exp_avg_sq.<name>" (AdamW's moments).
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granite/io/safetensors.h"

namespace granite {

class AdamW;
class ParameterBuffers;

class CheckpointState {
 public:
  explicit CheckpointState(const std::string& dir);
  bool sharded() const { return sharded_; }
  int64_t optimizer_steps() const { return steps_; }
  bool contains(const std::string& key) const { return ranges_.count(key) != 0; }
  // Whether it was written by a mixed-precision run (master weights kept apart from the compute weights): a run
  // resumes only a checkpoint of its own precision policy.
  bool mixed() const { return mixed_; }
  // Every parameter's shape, by name.
  const std::map<std::string, std::vector<int64_t>>& shapes() const { return shapes_; }
  // Elements [begin, begin + out.numel()) of the flattened tensor `key`, converted into `out` (1-D, any device and
  // dtype); every element must be in some file.
  void read(const std::string& key, int64_t begin, const torch::Tensor& out) const;
  // The whole tensor in `dtype` on the CPU, shaped as the checkpoint's parameter.
  torch::Tensor read_whole(const std::string& key, c10::ScalarType dtype) const;

 private:
  struct Range {
    int64_t begin = 0, length = 0;
    std::shared_ptr<SafetensorsFile> file;
    std::string tensor;
  };
  std::string dir_;
  bool sharded_ = false, mixed_ = false;
  int64_t steps_ = 0;
  std::map<std::string, std::vector<Range>> ranges_;
  std::map<std::string, std::vector<int64_t>> shapes_;
};

// A whole checkpoint's optimizer.safetensors (memory-mapped) and the optimizer step in its metadata; an error names
// the file when it is not a granite AdamW state.
std::pair<std::shared_ptr<SafetensorsFile>, int64_t> open_optimizer_state(const std::string& dir);

// The name of rank `rank`'s file in a sharded checkpoint of `world` ranks.
std::string sharded_state_file(int rank, int world);
// Writes this rank's pieces of the fully sharded `params` and `optimizer` (master, moments) to `path`, with the
// metadata above; `compute_dtype` names the dtype a consolidated model directory gets by default.
void save_sharded_state(const std::string& path, const ParameterBuffers& params, AdamW& optimizer, int rank, int world,
                        c10::ScalarType compute_dtype);
// Restores master weights, moments and step count into built buffers and optimizer of any sharding mode from either
// layout (the compute weights follow from the master).
void restore_state(const CheckpointState& state, ParameterBuffers& params, AdamW& optimizer);

}  // namespace granite
