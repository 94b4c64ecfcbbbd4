#pragma once
// Fused CUDA kernels standing in for chains of small PyTorch ops when nothing needs their autograd graph (decoding,
// evaluation): RMSNorm (8 kernels -> 1, and the residual add before it -> the same 1), rotary embedding of q and k
// (10 -> 1, and the KV cache's two writes -> the same 1), SwiGLU's silu(gate) * up (2 -> 1, or 0 inside the gate/up
// GEMV), linears over a decode step's few rows (bias copy + GEMV -> 1), and a decode step's attention (SDPA -> 1).
// They reproduce the composite ops' rounding in bf16/fp16 (granite/kernels/*.cu); tests on the GPU
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
// (x + delta, rms_norm(x + delta, weight, eps)) in one kernel: a residual add and the RMSNorm after it.
std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& delta,
                                                     const torch::Tensor& weight, double eps);
// q (B, T, Hq, D), k (B, T, Hk, D) (contiguous: as the projections produce them), cos/sin (B or 1, T, D) -> rotated
// q, k in the same (B, T, heads, D) layout.
std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& cos,
                                             const torch::Tensor& sin);
// rope(q, k, cos, sin) whose rotated k, and v (B, T, Hk, D) with it, go straight into a KV cache's buffers (contiguous
// (B, Hk, Tmax, D)) at positions slots[t] (int64 (T) on the device: a static cache's write slots) or, with slots
// undefined, first + t; returns rotated q (B, T, Hq, D). The same values as rope() and then the cache's copies.
torch::Tensor rope_into_cache(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& key_buffer,
                              const torch::Tensor& value_buffer, const torch::Tensor& slots, int64_t first);
// silu(gate) * up, same shapes and dtype.
torch::Tensor silu_mul(const torch::Tensor& gate, const torch::Tensor& up);

// Attention of a decode step's single query: q (B, H, 1, D), k and v (B, Hkv, Tk, D) with D contiguous (a KV cache's
// buffers or views of them; GQA heads read in place, no repeat), mask (B or 1, 1, 1, Tk) additive in q's dtype or
// bool (true = visible), or undefined (every key visible) -> (B, H, 1, D), softmax in fp32, rounded once. One kernel instead of SDPA's
// (cuDNN's flash kernel spends ~10 us per layer on this). Returns an undefined tensor where it does not apply
// (not use_fused(q), more than one query, another layout, Tk past ~10k keys): the caller's attention.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               const torch::Tensor& mask);

// x (M, K) @ weight (N, K)^T + bias (N, or undefined) by the decode GEMV kernel, M = 1..8 rows (x (..., K) flattened):
// warps stream the weights once, fp32 sums rounded once as cuBLAS's addmm does. layout: how rows are dealt to warps
// ({0, 0}: chosen by the shape and the device's SM count; tests and benchmarks pin one of
// launch::gemv_layout_built's, see inference_launchers.h).
struct GemvLayout {
  int rows_per_warp = 0, split = 0;
};
torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {},
                   GemvLayout layout = {});
// SwiGLU's activation from a packed gate/up weight (2I, K) (bias (2I) or undefined) in one kernel:
// silu(x @ weight[:I]^T + bias[:I]) * (x @ weight[I:]^T + bias[I:]) -> (..., I), rounded as gemv's two halves
// followed by silu_mul. Same conditions as gemv.
torch::Tensor gemv_swiglu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {},
                          GemvLayout layout = {});

// The rows up to which gemv beats cuBLAS on a decode step's projections (H100, 3B shapes:
// benchmarks/results/2026-12-05-decode.md); beyond them cuBLAS's tensor-core GEMM wins.
constexpr int64_t kGemvRowsBeatingCublas = 1;

// torch::nn::functional::linear(x, weight, bias), by gemv when use_fused(x), x has at most kGemvRowsBeatingCublas
// rows and gemv's layout conditions hold: one kernel instead of cuBLAS's bias copy + GEMV. Otherwise (CPU, training,
// larger batches) F::linear itself.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});
// silu(gate) * up of the packed gate/up projection by gemv_swiglu where linear() would take gemv; otherwise an
// undefined tensor (the caller runs linear and silu_mul).
torch::Tensor linear_swiglu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// The packed q/k/v projection of a decode step with rope_into_cache's work in the GEMV's epilogue: x (B, 1, C),
// weight ((Hq + 2 Hk) D, C), bias ((Hq + 2 Hk) D) or undefined; cos/sin (B or 1, 1, D); the cache buffers, slots
// and first as rope_into_cache. Returns rotated q (B, 1, Hq, D); rotated k and v go into the cache. The same values
// as linear() (the GEMV, same layout) then rope_into_cache(): the projection's output never goes to memory, and
// the rope kernel and its launch go away. layout as gemv's, of the paired forms.
torch::Tensor gemv_rope_into_cache(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   int64_t Hq, int64_t Hk, const torch::Tensor& cos, const torch::Tensor& sin,
                                   const torch::Tensor& key_buffer, const torch::Tensor& value_buffer,
                                   const torch::Tensor& slots, int64_t first, GemvLayout layout = {});
// gemv_rope_into_cache where linear() would take the GEMV (one sequence: B = 1), else undefined (the caller runs
// linear and rope_into_cache).
torch::Tensor linear_rope_into_cache(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                     int64_t Hq, int64_t Hk, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& key_buffer, const torch::Tensor& value_buffer,
                                     const torch::Tensor& slots, int64_t first);

// Overlapped launches of these kernels (Hopper's programmatic dependent launch: each may start while the kernel
// before it finishes, its first weight loads hiding that one's tail). On by default on sm_90+; off with
// GRANITE_OVERLAP_LAUNCHES=0 or here, for A/B runs. Results are the same either way.
void set_overlapped_launches(bool on);
bool overlapped_launches();

}  // namespace granite::kernels
