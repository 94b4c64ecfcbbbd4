#pragma once
// How a decoder stack runs each of its blocks: plainly or under activation checkpointing
// (granite/nn/activation_checkpoint.h), with optional hooks around the block -- where the fully sharded training
// mode gathers a block's parameters just in time and frees them afterwards (granite/train/fully_sharded.h), as
// PyTorch FSDP's pre/post-forward hooks do. Both architectures run their blocks through here.
#include <torch/types.h>

#include <cstddef>
#include <functional>

namespace granite {

class BlockHooks {
 public:
  virtual ~BlockHooks() = default;
  // Before block `block` computes (also before activation checkpointing's recomputation of it in backward).
  virtual void before_block(size_t block) = 0;
  // After it computed `output`; returns the output (a hook may register a gradient hook on it). `checkpointed`:
  // the block runs under activation checkpointing (its first forward without gradients, or its recomputation).
  virtual torch::Tensor after_block(size_t block, torch::Tensor output, bool checkpointed) = 0;
};

struct BlockRunner {
  bool checkpoint = false;      // activation checkpointing (training only, never with a KV cache)
  BlockHooks* hooks = nullptr;  // not owned

  torch::Tensor run(size_t block, const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                    const torch::Tensor& x) const;
};

}  // namespace granite
