#pragma once
// Launchers of the fused inference kernels (inference_kernels.cu), on raw device pointers: this header and the .cu
// know nothing of LibTorch (nvcc compiles them alone, fast); granite/kernels/fused_ops.cpp checks the tensors and
// calls them. Element types: kBF16, kF16, kF32 -- every input and output of one call has the same type.
// Each kernel reproduces the rounding of the composite PyTorch ops it replaces (see fused_ops.h).
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;

namespace granite::kernels::launch {

enum class Element { kBF16, kF16, kF32 };

// out[r, :] = weight * to_elem(x32 * rsqrt(mean(x32^2) + eps)), rows r < rows, each of C contiguous elements.
void rms_norm(Element e, const void* x, const void* weight, void* out, int64_t rows, int64_t C, float eps,
              cudaStream_t stream);

// Rotary embedding ("rotate_half" layout) of q (B, T, Hq, D) and k (B, T, Hk, D) into contiguous q_out, k_out of
// the same shapes. Inputs: element (b, t, h, d) at (b * T + t) * row + h * D + d, row = q_row or k_row (Hq * D when
// contiguous; wider when q and k are column ranges of one packed projection). cos/sin: element (b, t, d) at
// b * cs_batch + t * cs_time + d (cs_batch may be 0).
void rope(Element e, const void* q, const void* k, void* q_out, void* k_out, const void* cos, const void* sin,
          int64_t B, int64_t T, int64_t Hq, int64_t Hk, int64_t D, int64_t q_row, int64_t k_row, int64_t cs_batch,
          int64_t cs_time, cudaStream_t stream);

// out (rows, n), contiguous = to_elem(silu(gate)) * up, elementwise; gate and up element (r, i) at r * in_row + i.
void silu_mul(Element e, const void* gate, const void* up, void* out, int64_t rows, int64_t n, int64_t in_row,
              cudaStream_t stream);

// out (M, N) = x (M, K) @ w (N, K)^T + bias (N, or null), rounded once from the fp32 sum as cuBLAS's addmm does;
// M <= kMaxGemvRows, everything contiguous, K a multiple of 16 bytes' worth of elements, pointers 16-byte aligned.
// A warp per output feature reads w's row with 16-byte loads: the matrix-vector products of decoding, where the
// weights' bytes are the whole cost and cuBLAS adds a kernel to copy the bias in first.
constexpr int64_t kMaxGemvRows = 8;
void gemv(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream);

// The last CUDA error of a launch as text ("" when none): the C++ side turns it into an exception.
const char* last_error();

}  // namespace granite::kernels::launch
