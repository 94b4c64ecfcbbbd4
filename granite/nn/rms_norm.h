#pragma once
// RMSNorm as HF Llama computes it: reduce in fp32, cast back to the input dtype, then scale (the order matters for
// bf16 parity; HF modeling_llama.py LlamaRMSNorm).
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <utility>

namespace granite {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., C) -> (..., C), x's dtype
  // (x + delta, forward(x + delta)): a residual add and this norm, in one kernel where kernels::use_fused applies.
  std::pair<torch::Tensor, torch::Tensor> add_forward(const torch::Tensor& x, const torch::Tensor& delta);

  torch::Tensor weight;  // "weight", (C)
 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace granite
