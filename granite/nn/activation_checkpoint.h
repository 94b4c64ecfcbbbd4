#pragma once
// Activation checkpointing: run a block without keeping its activations, and recompute them during backward (Chen
// et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; PyTorch's reentrant torch.utils.checkpoint). Memory
// per checkpointed block falls to its input; compute grows by one extra forward of the block.
//
// A custom autograd Function: forward runs fn(x) with gradients off and saves only x (and the RNG state of x's
// device, so dropout draws the same mask again); backward re-runs fn on a detached copy of x with gradients on and
// backpropagates the incoming gradient through it -- the parameters used inside fn receive their gradients there --
// then returns the gradient of x. fn must depend on trainable tensors only through x and parameters (tensors it
// captures, such as RoPE tables or masks, get no gradient).
#include <torch/types.h>

#include <functional>

namespace granite {

torch::Tensor checkpoint_block(const std::function<torch::Tensor(const torch::Tensor&)>& fn, const torch::Tensor& x);

}  // namespace granite
