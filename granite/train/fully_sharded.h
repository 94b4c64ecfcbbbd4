#pragma once
// The fully sharded mode (ZeRO-3; PyTorch FSDP's FULL_SHARD with one unit per decoder block, fms-fsdp's and
// torchtitan's wrapping): every rank keeps 1/W of the parameters, of their gradients and of the optimizer state.
//
// Units: one per decoder block, plus the root (embeddings, learned positions, final norm, LM head). Each unit's
// parameters, per optimizer group (decay or not), are one flat vector padded to a multiple of W; rank r owns
// elements [r S, (r+1) S) of it (S = padded / W) in master, gradient, compute and moment form. A rank's master
// (and gradient, compute, moments) buffer of a group is its shards of every unit, unit after unit: AdamW updates it
// as one flat buffer, knowing nothing of units.
//   forward: before a block runs, its compute shards are all-gathered into a full flat buffer of which the block's
//     parameters are views; after it ran, the buffer's storage is released (the parameters keep their shapes, with
//     no memory behind them) -- and under activation checkpointing the same happens around its recomputation;
//   backward: a gradient hook on the block's output gathers it again before its backward runs (not needed under
//     activation checkpointing, where the recomputation gathers it); each parameter's gradient is added into the
//     unit's fp32 gradient vector as it arrives, and when all of the unit's have arrived the vector is
//     reduce-scattered (SUM) into this rank's gradient shard and freed, with the parameters;
//   the root stays gathered (it is needed at both ends of the step: the tied embedding is the LM head) and is
//     gathered again after each optimizer step.
// Storage is released and re-allocated in place (the StorageImpl stays, its data pointer changes), so the views
// autograd saved for backward see the re-gathered data: PyTorch FSDP's storage-resize technique.
// Memory per rank with Adam and mixed precision: 18/W bytes per parameter plus one or two gathered blocks (and their
// fp32 gradient vectors) and the root.
#include <torch/csrc/autograd/function.h>

#include <memory>
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/models/causal_lm.h"
#include "granite/nn/block_runner.h"
#include "granite/train/optimizer.h"

namespace granite {

struct ParameterGroup;

class FullySharded : public BlockHooks {
 public:
  // Lays out `groups` (2: decay, no decay): their slots, pieces and local buffers. The model's parameters are on
  // any device in fp32 (the master dtype); rank 0's values are broadcast, and the parameters become views of the
  // units' buffers on `device`.
  FullySharded(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
               c10::ScalarType master_dtype, Communicator& comm, const torch::Device& device,
               std::vector<ParameterGroup>& groups);
  ~FullySharded() override;

  void before_block(size_t block) override;
  torch::Tensor after_block(size_t block, torch::Tensor output, bool checkpointed) override;
  // After each micro-batch's backward: the units whose gradients did not all arrive are reduce-scattered too, and
  // every block is resharded.
  void finish_backward();
  // After the optimizer updated the master shards: the compute shards follow, and the root is gathered again.
  void sync_model();

 private:
  struct Part;
  struct Unit;
  void gather(Unit& unit);
  void release(Unit& unit);
  void gradient_arrived(size_t unit, size_t part, size_t member);
  void reduce_scatter(Unit& unit);

  Communicator& comm_;
  std::vector<ParameterGroup>& groups_;
  std::vector<std::unique_ptr<Unit>> units_;  // [0] the root, [1 + i] block i
  bool mixed_ = false;
  // Keeps the accumulators (and so the hooks) alive; the flag turns the hooks off when this goes away.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::shared_ptr<bool> alive_;
};

}  // namespace granite
