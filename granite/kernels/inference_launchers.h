#pragma once
// Launchers of the fused inference kernels (inference_kernels.cu, gemv_kernels.cu), on raw device pointers: this
// header and the .cu files know nothing of LibTorch (nvcc compiles them alone, fast); granite/kernels/fused_ops.cpp
// checks the tensors and calls them. Element types: kBF16, kF16, kF32 -- every input and output of one call has the
// same type. Each kernel reproduces the rounding of the composite PyTorch ops it replaces (see fused_ops.h).
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;

namespace granite::kernels::launch {

enum class Element { kBF16, kF16, kF32 };

// out[r, :] = weight * to_elem(x32 * rsqrt(mean(x32^2) + eps)), rows r < rows, each of C contiguous elements.
// With delta (else null), x32 is to_elem(x + delta) instead, and that sum is also written to sum_out.
void rms_norm(Element e, const void* x, const void* delta, void* sum_out, const void* weight, void* out, int64_t rows,
              int64_t C, float eps, cudaStream_t stream);

// Where rotated k (and v, copied alongside) are written: element (b, t, h, d) at
// b * batch + h * head + slot(t) * time + d, with slot(t) = slots[t] (device memory: a static KV cache's write
// positions, read at run time so a captured graph replays them) when slots is set, else first + t.
struct HeadsDestination {
  int64_t batch = 0, head = 0, time = 0, first = 0;
  const int64_t* slots = nullptr;
};

// Rotary embedding ("rotate_half" layout) of q (B, T, Hq, D) and k (B, T, Hk, D). Inputs: element (b, t, h, d) at
// (b * T + t) * row + h * D + d, row = q_row / k_row / v_row (Hq * D when contiguous; wider when q, k and v are
// column ranges of one packed projection). cos/sin: element (b, t, d) at b * cs_batch + t * cs_time + d (cs_batch
// may be 0). q_out: contiguous (B, T, Hq, D); k_out (and v_out, when v is set) at kv_out.
struct RopeArgs {
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  int64_t q_row = 0, k_row = 0, v_row = 0;
  const void *cos = nullptr, *sin = nullptr;
  int64_t cs_batch = 0, cs_time = 0;
  void *q_out = nullptr, *k_out = nullptr, *v_out = nullptr;
  HeadsDestination kv_out;
  int64_t B = 0, T = 0, Hq = 0, Hk = 0, D = 0;
};
void rope(Element e, const RopeArgs& args, cudaStream_t stream);

// out (rows, n), contiguous = to_elem(silu(gate)) * up, elementwise; gate and up element (r, i) at r * in_row + i.
void silu_mul(Element e, const void* gate, const void* up, void* out, int64_t rows, int64_t n, int64_t in_row,
              cudaStream_t stream);

// out (M, N) = x (M, K) @ w (N, K)^T + bias (N, or null), rounded once from the fp32 sum as cuBLAS's addmm does;
// M <= kMaxGemvRows, everything contiguous, K a multiple of 16 bytes' worth of elements, pointers 16-byte aligned.
// Warps stream w's rows with 16-byte loads (gemv_kernels.cu): the matrix-vector products of decoding, where the
// weights' bytes are the whole cost and cuBLAS adds a kernel to copy the bias in first.
constexpr int64_t kMaxGemvRows = 8;
// How the rows are dealt to warps: rows_per_warp rows each over 1/split of K (split warps per row). {0, 0}: chosen
// by choose_gemv_layout; tests and benchmarks pin one. Built: {1,1} {2,1} {1,2} {1,4} for one input row, {1,1} for
// more; the paired forms (SwiGLU, rope: two rows a warp) {2,1} {2,2}.
struct GemvLayout {
  int rows_per_warp = 0, split = 0;
};
// The layout that gives the busiest SM the fewest weight rows (blocks are dealt out evenly over the SMs).
// N: rows, or pairs of rows for the paired forms.
GemvLayout choose_gemv_layout(int64_t M, int64_t N, bool paired);
bool gemv_layout_built(GemvLayout layout, int64_t M, bool paired);
void gemv(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream, GemvLayout layout = {});
// SwiGLU's first half in one kernel: out (M, I) = silu(x @ w[:I]^T + bias[:I]) * (x @ w[I:]^T + bias[I:]) for a
// packed gate/up weight w (2I, K) (bias (2I) or null), rounded as gemv's two halves followed by silu_mul.
void gemv_swiglu(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t I,
                 int64_t K, cudaStream_t stream, GemvLayout layout = {});
// The packed q/k/v projection of one new token per sequence (x (B, K), w ((Hq + 2 Hk) D, K), bias or null) with
// rope's work in its epilogue: the same values as gemv then rope with rope.v set (T = 1; rope.q/k/v unused, the
// projection's rows are the inputs): q rotated to rope.q_out, k rotated and v to rope.kv_out. M = rope.B.
void gemv_rope(Element e, const void* x, const void* w, const void* bias, int64_t K, const RopeArgs& rope,
               cudaStream_t stream, GemvLayout layout = {});

// Attention of one new query per (b, h) over Tk keys: out (B, 1, H, D) contiguous = softmax(q.k^T * scale + mask) v,
// fp32 inside. Elements: q (b, h, d) at b * q_b + h * q_h + d; k and v (b, hk, j, d) at b * kv_b + hk * kv_h +
// j * kv_t + d with hk = h / (H / Hkv); mask (additive T, bool when mask_is_bool, or null) (b, j) at
// b * mask_b + j * mask_t. k and v
// rows 16-byte aligned. Returns false without launching when the shape does not fit (D not 1..16 times 16 bytes'
// worth of elements, or Tk too long for shared memory): the caller uses another attention.
struct DecodeAttentionArgs {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  void* out = nullptr;
  int64_t B = 0, H = 0, Hkv = 0, Tk = 0, D = 0;
  int64_t q_b = 0, q_h = 0, kv_b = 0, kv_h = 0, kv_t = 0, mask_b = 0, mask_t = 0;
  float scale = 1.f;
  bool mask_is_bool = false;
};
constexpr int kDecodeAttentionThreads = 256;
bool decode_attention(Element e, const DecodeAttentionArgs& args, cudaStream_t stream);

// Overlapped launches (programmatic dependent launch, sm_90+: kernel_common.cuh): each kernel here may start while
// the one before it finishes. On unless GRANITE_OVERLAP_LAUNCHES=0 or switched off here (A/B runs).
void set_overlapped_launches(bool on);
bool overlapped_launches();

// The last CUDA error of a launch as text ("" when none): the C++ side turns it into an exception.
const char* last_error();

}  // namespace granite::kernels::launch
