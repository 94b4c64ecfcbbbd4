#pragma once
// AdamW (Loshchilov & Hutter) over the flat master buffers of ParameterBuffers, with PyTorch's update exactly
// (torch/optim/adamw.py, _single_tensor_adamw, amsgrad off):
//   p   *= 1 - lr * wd                       (decoupled weight decay, wd per group)
//   m    = b1 m + (1 - b1) g                 v = b2 v + (1 - b2) g^2
//   p   -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// On CUDA with LibTorch >= 2.0 the same update runs as PyTorch's fused multi-tensor kernel (at::_fused_adamw_, what
// torch.optim.AdamW(fused=True) calls; compat.h); elsewhere as a few elementwise kernels per chunk of the buffers.
// Moments are kept in the master dtype (fp32 with mixed precision). After the update the compute copy of the
// parameters is refreshed (ParameterBuffers::sync_model).
#include <map>
#include <string>

#include "granite/train/optimizer.h"
#include "granite/train/parameter_buffers.h"

namespace granite {

class Communicator;

class AdamW {
 public:
  // shard_over (ZeRO-1, Megatron-LM's distributed optimizer): each rank keeps the moments (and, with mixed
  // precision, the fp32 master) of only its 1/W shard of every flat buffer -- ParameterBuffers built with
  // shards = W, shard = rank -- updates that shard, and the updated shards are all-gathered (in the compute dtype)
  // so every rank holds the whole model again.
  AdamW(ParameterBuffers& params, const OptimizerConfig& config, Communicator* shard_over = nullptr);
  // One update at learning rate lr from the gradients in the buffers (already clipped).
  void step(double lr);
  int64_t steps() const { return steps_; }
  bool fused() const { return fused_; }

  // The state by parameter name: "exp_avg.<name>", "exp_avg_sq.<name>" (views of the flat moments), plus
  // "master.<name>" with mixed precision (the bf16 model weights alone cannot restore the fp32 master).
  // Sharded: valid between gather_state() and release_state() (a collective every rank calls: the whole moments,
  // for a checkpoint that any number of ranks can resume).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  void gather_state();
  void release_state();
  // Restores what state_tensors() gave (any device/dtype in; every tensor must be there with its shape) and the
  // step count; `where` names the source in errors.
  void load_state(const std::map<std::string, torch::Tensor>& tensors, int64_t steps, const std::string& where);
  // Fully sharded parameters: this rank's moments of group i, laid out as the group's local buffers
  // (ParameterGroup::pieces), which sharded checkpoints save and restore directly.
  torch::Tensor& exp_avg(size_t group) { return exp_avg_.at(group); }
  torch::Tensor& exp_avg_sq(size_t group) { return exp_avg_sq_.at(group); }
  void set_steps(int64_t steps);

 private:
  ParameterBuffers& params_;
  OptimizerConfig config_;
  bool fused_ = false;
  int64_t steps_ = 0;
  Communicator* comm_ = nullptr;
  std::vector<int64_t> begin_, length_;              // per group: the part of the flat buffers this rank updates
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;  // per group, flat: that part's moments
  std::vector<torch::Tensor> whole_exp_avg_, whole_exp_avg_sq_, whole_master_;  // gather_state() .. release_state()
  torch::Tensor step_tensor_;                        // the fused kernel reads the step count from a device tensor
};

}  // namespace granite
