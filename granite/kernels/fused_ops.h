#pragma once
// Fused CUDA kernels standing in for chains of small PyTorch ops when nothing needs their autograd graph (decoding,
// evaluation): RMSNorm (8 kernels -> 1), rotary embedding of q and k (10 -> 1), SwiGLU's silu(gate) * up (2 -> 1),
// and linears over a decode step's few rows (bias copy + GEMV -> 1).
// They reproduce the composite ops' rounding in bf16/fp16 (granite/kernels/inference_kernels.cu); tests on the GPU
// compare them against the composite path (tests/cuda/test_fused_ops.cpp).
//
// use_fused(x): the kernels built (a CUDA LibTorch and a CUDA compiler), x on a CUDA device, grad mode off, and not switched off (set_fused_enabled(false) or
// GRANITE_FUSED_KERNELS=0 in the environment, for A/B runs). Callers keep the composite path for everything else.
#include <torch/types.h>

#include <utility>

namespace granite::kernels {

bool use_fused(const torch::Tensor& x);
void set_fused_enabled(bool enabled);
bool fused_enabled();

// x (..., C), weight (C), same dtype: weight * (x.float() * rsqrt(mean(x.float()^2) + eps)).to(x.dtype).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// q (B, T, Hq, D), k (B, T, Hk, D) (contiguous: as the projections produce them), cos/sin (B or 1, T, D) -> rotated
// q, k in the same (B, T, heads, D) layout.
std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& cos,
                                             const torch::Tensor& sin);
// silu(gate) * up, same shapes and dtype.
torch::Tensor silu_mul(const torch::Tensor& gate, const torch::Tensor& up);

// torch::nn::functional::linear(x, weight, bias), by the decode GEMV kernel when x has at most 8 rows (the batch of
// a decode step) and use_fused(x): one kernel instead of cuBLAS's bias copy + GEMV, fp32 sums rounded once as
// addmm. Otherwise (and on CPU, in training) F::linear itself.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

}  // namespace granite::kernels
