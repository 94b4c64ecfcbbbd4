// Fused kernels for inference (no autograd): each replaces a chain of PyTorch elementwise/reduction kernels whose
// launches, not their bytes, bound batch-1 decoding (a 3B decode step is ~1,500 tiny kernels otherwise). Each
// reproduces the composite ops' rounding: every intermediate PyTorch would store in the element type is rounded to
// it here too (round-to-nearest-even), arithmetic in fp32 as PyTorch's opmath. The only difference left is the
// order of the fp32 sum in RMSNorm's mean (a block reduction here, PyTorch's reduce kernel there).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "granite/kernels/inference_launchers.h"

namespace granite::kernels::launch {

namespace {

template <typename T>
struct Scalar;
template <>
struct Scalar<__nv_bfloat16> {
  static __device__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
  static __device__ __nv_bfloat16 make(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Scalar<__half> {
  static __device__ float load(const __half* p) { return __half2float(*p); }
  static __device__ __half make(float v) { return __float2half_rn(v); }
};
template <>
struct Scalar<float> {
  static __device__ float load(const float* p) { return *p; }
  static __device__ float make(float v) { return v; }
};

// v rounded to T and back: what PyTorch's stored intermediate holds.
template <typename T>
__device__ float round_to(float v) {
  const T r = Scalar<T>::make(v);
  return Scalar<T>::load(&r);
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.f;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// One block per row. PyTorch: x32 = x.float(); var = x32.pow(2).mean(-1); y = x32 * rsqrt(var + eps);
// out = weight * y.to(T)  (HF LlamaRMSNorm).
template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ out,
                                int64_t C, float eps) {
  const T* row = x + blockIdx.x * C;
  T* dst = out + blockIdx.x * C;
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = Scalar<T>::load(row + c);
    sum = __fadd_rn(sum, __fmul_rn(v, v));  // x.pow(2) is stored before it is summed: no FMA
  }
  const float mean = block_sum(sum) * (1.f / float(C));  // PyTorch MeanOps: acc * factor
  const float inv = rsqrtf(__fadd_rn(mean, eps));
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float y = round_to<T>(__fmul_rn(Scalar<T>::load(row + c), inv));
    dst[c] = Scalar<T>::make(__fmul_rn(Scalar<T>::load(weight + c), y));
  }
}

// One thread per (row, d < D/2) pair. PyTorch: rotated = cat(-x2, x1); out = x * cos + rotated * sin, three
// rounded ops: out[d] = r(r(x[d] cos[d]) + r(-x[d+h] sin[d])), out[d+h] = r(r(x[d+h] cos[d+h]) + r(x[d] sin[d+h])).
template <typename T>
__global__ void rope_kernel(const T* __restrict__ q, const T* __restrict__ k, T* __restrict__ q_out,
                            T* __restrict__ k_out, const T* __restrict__ cos, const T* __restrict__ sin, int64_t T_,
                            int64_t Hq, int64_t Hk, int64_t D, int64_t q_row, int64_t k_row, int64_t cs_batch,
                            int64_t cs_time, int64_t pairs) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= pairs) return;
  const int64_t half = D / 2, d = i % half, head_row = i / half;  // head_row over (B, T, Hq + Hk)
  const int64_t H = Hq + Hk, h = head_row % H, bt = head_row / H, t = bt % T_, b = bt / T_;
  const T* src;
  T* dst;
  if (h < Hq) {
    src = q + bt * q_row + h * D;
    dst = q_out + (bt * Hq + h) * D;
  } else {
    src = k + bt * k_row + (h - Hq) * D;
    dst = k_out + (bt * Hk + (h - Hq)) * D;
  }
  const T* c = cos + b * cs_batch + t * cs_time;
  const T* s = sin + b * cs_batch + t * cs_time;
  const float x1 = Scalar<T>::load(src + d), x2 = Scalar<T>::load(src + d + half);
  // __fmul_rn / __fadd_rn: never contracted into an FMA (which would skip a rounding PyTorch does in fp32 too).
  const float lo = __fadd_rn(round_to<T>(__fmul_rn(x1, Scalar<T>::load(c + d))),
                             round_to<T>(__fmul_rn(-x2, Scalar<T>::load(s + d))));
  const float hi = __fadd_rn(round_to<T>(__fmul_rn(x2, Scalar<T>::load(c + d + half))),
                             round_to<T>(__fmul_rn(x1, Scalar<T>::load(s + d + half))));
  dst[d] = Scalar<T>::make(lo);
  dst[d + half] = Scalar<T>::make(hi);
}

// PyTorch: silu(g) = g / (1 + exp(-g)) in fp32, stored as T; then * up, rounded.
template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                int64_t n, int64_t in_row, int64_t total) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t at = (i / n) * in_row + i % n;
  const float g = Scalar<T>::load(gate + at);
  const float s = round_to<T>(g / (1.f + expf(-g)));  // c10::cuda::compat::exp(float) is ::expf
  out[i] = Scalar<T>::make(__fmul_rn(s, Scalar<T>::load(up + at)));
}

// A warp per output feature n (8 per block): lanes stride over w's row n with 16-byte loads, kUnroll of them in
// flight, each multiplied with the same columns of every input row (x is small and stays in L1); then a warp sum.
template <typename T, int M>
__global__ void gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                            T* __restrict__ out, int64_t N, int64_t K) {
  constexpr int V = 16 / sizeof(T), kUnroll = 4, kStride = 32 * V;
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  const T* row = w + n * K;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  auto accumulate = [&](const uint4& wv, int64_t k) {
    const T* we = reinterpret_cast<const T*>(&wv);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + m * K + k));
      const T* xe = reinterpret_cast<const T*>(&xv);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[m] = fmaf(Scalar<T>::load(we + j), Scalar<T>::load(xe + j), acc[m]);
    }
  };
  int64_t k = int64_t(lane) * V;
  for (; k + (kUnroll - 1) * kStride < K; k += kUnroll * kStride) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = __ldg(reinterpret_cast<const uint4*>(row + k + u * kStride));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) accumulate(wv[u], k + u * kStride);
  }
  for (; k < K; k += kStride) accumulate(__ldg(reinterpret_cast<const uint4*>(row + k)), k);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    for (int offset = 16; offset > 0; offset >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], offset);
  }
  if (lane == 0) {
    const float b = bias != nullptr ? Scalar<T>::load(bias + n) : 0.f;
#pragma unroll
    for (int m = 0; m < M; ++m) out[m * N + n] = Scalar<T>::make(acc[m] + b);
  }
}

// Calls f with the CUDA element type of e as a null pointer (its type is what matters).
template <typename F>
void dispatch(Element e, F&& f) {
  switch (e) {
    case Element::kBF16: f(static_cast<__nv_bfloat16*>(nullptr)); break;
    case Element::kF16: f(static_cast<__half*>(nullptr)); break;
    case Element::kF32: f(static_cast<float*>(nullptr)); break;
  }
}

unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

}  // namespace

void rms_norm(Element e, const void* x, const void* weight, void* out, int64_t rows, int64_t C, float eps,
              cudaStream_t stream) {
  if (rows == 0) return;
  // One warp per 256 elements of a row, 32..1024 threads.
  int threads = int(((C + 255) / 256) * 32);
  threads = threads < 32 ? 32 : (threads > 1024 ? 1024 : threads);
  dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    rms_norm_kernel<T><<<unsigned(rows), threads, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(weight),
                                                                static_cast<T*>(out), C, eps);
  });
}

void rope(Element e, const void* q, const void* k, void* q_out, void* k_out, const void* cos, const void* sin,
          int64_t B, int64_t T, int64_t Hq, int64_t Hk, int64_t D, int64_t q_row, int64_t k_row, int64_t cs_batch,
          int64_t cs_time, cudaStream_t stream) {
  const int64_t pairs = B * T * (Hq + Hk) * (D / 2);
  if (pairs == 0) return;
  constexpr int threads = 256;
  dispatch(e, [&](auto* type) {
    using E = std::remove_pointer_t<decltype(type)>;
    rope_kernel<E><<<blocks_for(pairs, threads), threads, 0, stream>>>(
        static_cast<const E*>(q), static_cast<const E*>(k), static_cast<E*>(q_out), static_cast<E*>(k_out),
        static_cast<const E*>(cos), static_cast<const E*>(sin), T, Hq, Hk, D, q_row, k_row, cs_batch, cs_time, pairs);
  });
}

void silu_mul(Element e, const void* gate, const void* up, void* out, int64_t rows, int64_t n, int64_t in_row,
              cudaStream_t stream) {
  const int64_t total = rows * n;
  if (total == 0) return;
  constexpr int threads = 256;
  dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    silu_mul_kernel<T><<<blocks_for(total, threads), threads, 0, stream>>>(
        static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n, in_row, total);
  });
}

void gemv(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream) {
  if (M == 0 || N == 0) return;
  constexpr int threads = 256, rows_per_block = threads / 32;
  const unsigned blocks = blocks_for(N, rows_per_block);
  dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const auto* xp = static_cast<const T*>(x);
    const auto* wp = static_cast<const T*>(w);
    const auto* bp = static_cast<const T*>(bias);
    auto* op = static_cast<T*>(out);
    switch (M) {
      case 1: gemv_kernel<T, 1><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 2: gemv_kernel<T, 2><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 3: gemv_kernel<T, 3><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 4: gemv_kernel<T, 4><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 5: gemv_kernel<T, 5><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 6: gemv_kernel<T, 6><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 7: gemv_kernel<T, 7><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      case 8: gemv_kernel<T, 8><<<blocks, threads, 0, stream>>>(xp, wp, bp, op, N, K); break;
      default: break;  // the caller keeps M <= kMaxGemvRows
    }
  });
}

const char* last_error() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

}  // namespace granite::kernels::launch
