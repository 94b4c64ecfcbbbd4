#pragma once
// A model's trainable parameters laid out for training: per optimizer group (weight decay or not) one flat master
// buffer and one flat fp32 gradient buffer, every parameter a view at its offset. Two layouts:
//   * one dtype (fp32 on CPU): the model's parameters ARE the views of the master buffer and their .grad the views
//     of the gradient buffer; autograd accumulates the micro-batches in place.
//   * mixed precision (bf16 compute, fp32 master: Megatron-LM's and FSDP MixedPrecision's default): the model's
//     parameters are bf16 views of a flat compute buffer. A post-hook on each parameter's gradient accumulator adds
//     the fresh bf16 gradient into the parameter's fp32 slot and drops it (Megatron-LM's `main_grad`), so gradients
//     accumulate over micro-batches in fp32 and a whole bf16 gradient never exists: 18 bytes per parameter with Adam
//     (2 compute + 4 master + 4 gradient + 8 moments). After the optimizer updates the master, sync_model() rounds
//     it into the compute buffer.
// A third layout, fully sharded (granite/train/fully_sharded.h), keeps only this rank's shards of every buffer.
// In the first two layouts the same post-hook then reports the slot as up to date (on_gradient_ready: data parallelism's
// bucketed all-reduce starts there).
// Flat buffers make the optimizer, the gradient norm and (distributed) the all-reduce a few large kernels instead of
// one per parameter. Build this after the model is on its device and before training; moving the model afterwards
// (module.to) would detach its parameters from the buffers.
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/models/causal_lm.h"
#include "granite/train/fully_sharded.h"
#include "granite/train/optimizer.h"

namespace granite {

struct ParameterSlot {
  std::string name;  // the HF key
  int64_t offset = 0, numel = 0;
  std::vector<int64_t> shape;
};

// Fully sharded mode: a part of a parameter this rank holds -- elements [begin, begin + length) of the flattened
// parameter `slot`, at `local` in the group's (local) master, gradient and moment buffers.
struct ParameterPiece {
  size_t slot = 0;
  int64_t begin = 0, length = 0, local = 0;
};

struct ParameterGroup {
  bool decay = false;
  std::vector<ParameterSlot> slots;  // in model.named_parameters() order
  torch::Tensor master;              // (padded numel,) master dtype, or its shard starting at master_begin
  int64_t master_begin = 0;
  torch::Tensor grad;                // (padded numel,) fp32 (the master dtype when there is no compute copy)
  torch::Tensor compute;             // (padded numel,) compute dtype; the master itself when the dtypes are equal
  // Fully sharded: master, grad and compute are this rank's shards of every unit (granite/train/fully_sharded.h),
  // `pieces` says what they hold, and a slot's offset is within its unit's flat vector (view() does not apply).
  std::vector<ParameterPiece> pieces;
  // The slot's view of a flat buffer, shaped like the parameter.
  torch::Tensor view(const torch::Tensor& flat, const ParameterSlot& slot) const {
    return flat.narrow(0, slot.offset, slot.numel).view(slot.shape);
  }
};

// Views of at most `max_numel` elements covering a flat buffer: elementwise work in bounded temporaries, and kernels
// that index with 32 bits (some multi-tensor kernels) never see more than 2^31 elements.
std::vector<torch::Tensor> flat_chunks(const torch::Tensor& flat, int64_t max_numel = int64_t(1) << 28);

class ParameterBuffers {
 public:
  // Groups: 0 decayed, 1 not (granite::decays). The model's current values become the master (exact: the model is
  // expected in the master dtype, fp32 for mixed precision) and are rounded into the compute dtype.
  // shards > 1 (the sharded optimizer, shards = the world size): each flat buffer's length is rounded up to a
  // multiple of `shards` (zeros after the last parameter) so that it splits into equal shards, and with mixed
  // precision the fp32 master holds only shard `shard` (master_begin says where it starts).
  ParameterBuffers(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
                   c10::ScalarType master_dtype = c10::kFloat, int64_t shards = 1, int64_t shard = 0);
  // Fully sharded over `comm` (granite/train/fully_sharded.h): the model's parameters (fp32, on any device; rank
  // 0's values are used) move to `device` as views of per-block buffers gathered just in time; master, gradient and
  // compute buffers hold this rank's shards (see ParameterGroup::pieces).
  ParameterBuffers(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
                   c10::ScalarType master_dtype, Communicator& comm, const torch::Device& device);
  ~ParameterBuffers();
  ParameterBuffers(const ParameterBuffers&) = delete;
  ParameterBuffers& operator=(const ParameterBuffers&) = delete;

  bool mixed() const { return mixed_; }
  // The fully sharded mode's units (nullptr otherwise): train_step calls its finish_backward().
  FullySharded* fully_sharded() { return sharded_.get(); }
  bool is_fully_sharded() const { return sharded_ != nullptr; }
  std::vector<ParameterGroup>& groups() { return groups_; }
  const std::vector<ParameterGroup>& groups() const { return groups_; }
  int64_t numel() const;  // parameters (without padding)

  void zero_grad();
  // Global L2 norm of the fp32 gradients (one host sync; fully sharded: the shards' squares summed over ranks).
  double grad_norm() const;
  void scale_grad(double factor);
  // Master -> compute buffer (mixed precision; nothing to do otherwise): the master's part of it.
  void sync_model();

  // Called (on the autograd thread) each time a parameter's gradient has been added into its fp32 slot during
  // backward, with the group and slot index: where data-parallel training starts a bucket's all-reduce as soon as
  // the bucket is complete. One listener; an empty function removes it.
  using GradientReady = std::function<void(size_t group, size_t slot)>;
  void on_gradient_ready(GradientReady listener) { *listener_ = std::move(listener); }

 private:
  bool mixed_ = false;
  std::vector<ParameterGroup> groups_;
  // Keeps the accumulators (and so the hooks) alive; the flag turns the hooks off when these buffers go away.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::shared_ptr<bool> alive_;
  std::shared_ptr<GradientReady> listener_ = std::make_shared<GradientReady>();
  Communicator* comm_ = nullptr;  // fully sharded
  std::unique_ptr<FullySharded> sharded_;
};

}  // namespace granite
