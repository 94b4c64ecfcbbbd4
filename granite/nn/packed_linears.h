#pragma once
// Several linears over the same input packed into one matrix for inference: q/k/v become one GEMM, gate/up another
// (as vLLM's QKVParallelLinear and gpt-fast's wqkv). No memory is added: the parts' parameters are re-pointed as row
// ranges (views) of the packed weight and bias, so checkpoints, state dicts and parameter names are unchanged.
//
// The packed path is taken only while grad mode is off (autograd must see the parts' own parameters) and while
// every part is still a view of the packed tensors: anything that re-points a parameter (Module::to, sharding's
// flat buffers) makes the parts independent again, and the packed copy is dropped.
#include <torch/nn/modules/linear.h>

#include <utility>
#include <vector>

namespace granite {

class PackedLinears {
 public:
  PackedLinears() = default;
  // The parts: same in_features and device/dtype, all with a bias or none.
  explicit PackedLinears(std::vector<torch::nn::Linear> parts);

  // (.., in) -> (.., sum of out_features): the parts' outputs side by side, in order. Undefined when the packed
  // path does not apply (grad mode on, not packed, or a part re-pointed): the caller then runs the parts.
  torch::Tensor forward(const torch::Tensor& x);
  // The packed weight and bias (bias undefined when the parts have none) where forward() would use them, else
  // undefined tensors: for kernels that fuse what follows the GEMM (kernels::linear_swiglu).
  std::pair<torch::Tensor, torch::Tensor> usable();
  bool packed() const { return weight_.defined(); }

 private:
  bool intact() const;

  std::vector<torch::nn::Linear> parts_;
  torch::Tensor weight_, bias_;
};

}  // namespace granite
