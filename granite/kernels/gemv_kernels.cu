// The decode GEMV: out (M, N) = x (M, K) @ w (N, K)^T + bias for a decode step's few rows, where reading w once is
// the whole cost (3B bf16: 7 GB a token). Plain CUDA, no LibTorch (see inference_launchers.h).
//
// Shape of the work: a block is 8 warps; a warp owns kRows weight rows over one of kSplit interleaved slices of K
// (lane l of slice p reads the 16-byte vectors at (p * 32 + l) * V + i * kSplit * 32 * V), kUnroll vectors per row in
// flight, each multiplied with the same columns of every x row (x is small and stays in L1); warp sums, then the
// slices' partial sums added in shared memory. kRows and kSplit only redistribute the same rows over the GPU's SMs
// (choose_layout): with a warp per row, 2,560 rows make 320 blocks, 2.4 per SM of 132, and the SMs given 3 finish
// last. Rounded once from the fp32 sum as cuBLAS's addmm.
//
// The SwiGLU form reads a packed gate/up weight (2I, K): a warp owns gate row n and up row I + n and writes
// silu(gate) * up with the rounding of addmm then silu_mul (the elementwise kernel and its launch go away).
#include <atomic>
#include <type_traits>

#include "granite/kernels/kernel_common.cuh"

namespace granite::kernels::launch {

namespace {

using detail::round_to;
using detail::Scalar;

constexpr int kGemvThreads = 256, kGemvWarps = kGemvThreads / 32;

template <typename T, int M, int kRows, int kSplit, bool kSwiGLU>
__global__ void __launch_bounds__(kGemvThreads)
    gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ out,
                int64_t N, int64_t K) {
  static_assert(!kSwiGLU || kRows == 2, "SwiGLU: a gate row and an up row per warp");
  constexpr int V = 16 / sizeof(T), kUnroll = 4, kUnits = kGemvWarps / kSplit;
  constexpr int64_t kStep = int64_t(kSplit) * 32 * V;  // from one of a lane's vectors to its next
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, part = warp % kSplit;
  // Outputs of unit u: u * kRows + r (plain, N outputs) or u (SwiGLU: N = I outputs from rows u and N + u).
  const int64_t unit = int64_t(blockIdx.x) * kUnits + warp / kSplit;
  const T* rows[kRows];
  bool live[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t n = kSwiGLU ? unit + r * N : unit * kRows + r;
    live[r] = kSwiGLU ? unit < N : n < N;
    rows[r] = w + (live[r] ? n : 0) * K;
  }
  const int64_t first = (int64_t(part) * 32 + lane) * V;
  uint4 wv[kRows][kUnroll];
  auto load = [&](int64_t k) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t at = k + u * kStep;
        wv[r][u] = live[r] && at < K ? __ldg(reinterpret_cast<const uint4*>(rows[r] + at)) : make_uint4(0, 0, 0, 0);
      }
    }
  };
  load(first);  // the weights do not depend on earlier kernels: their loads go out before waiting for them
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  float acc[kRows][M];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.f;
  }
  for (int64_t k = first; k < K;) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t at = k + u * kStep;
      if (at >= K) break;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + m * K + at));
        const T* xe = reinterpret_cast<const T*>(&xv);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const T* we = reinterpret_cast<const T*>(&wv[r][u]);
#pragma unroll
          for (int j = 0; j < V; ++j) acc[r][m] = fmaf(Scalar<T>::load(we + j), Scalar<T>::load(xe + j), acc[r][m]);
        }
      }
    }
    k += kUnroll * kStep;
    if (k < K) load(k);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      for (int offset = 16; offset > 0; offset >>= 1) acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], offset);
    }
  }
  if constexpr (kSplit > 1) {  // slice 0's warp adds the slices' sums, in slice order
    __shared__ float partial[kGemvWarps][kRows * M];
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int m = 0; m < M; ++m) partial[warp][r * M + m] = acc[r][m];
      }
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float s = partial[warp][r * M + m];
        for (int p = 1; p < kSplit; ++p) s += partial[warp + p][r * M + m];
        acc[r][m] = s;
      }
    }
  }
  if (lane != 0) return;
  if constexpr (kSwiGLU) {
    if (unit >= N) return;
    const float bg = bias != nullptr ? Scalar<T>::load(bias + unit) : 0.f;
    const float bu = bias != nullptr ? Scalar<T>::load(bias + N + unit) : 0.f;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float gate = round_to<T>(acc[0][m] + bg), up = round_to<T>(acc[1][m] + bu);
      out[m * N + unit] = Scalar<T>::make(__fmul_rn(detail::silu_rounded<T>(gate), up));
    }
  } else {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t n = unit * kRows + r;
      if (n >= N) break;
      const float b = bias != nullptr ? Scalar<T>::load(bias + n) : 0.f;
#pragma unroll
      for (int m = 0; m < M; ++m) out[m * N + n] = Scalar<T>::make(acc[r][m] + b);
    }
  }
}

// The device's SM count, once per device.
int sm_count() {
  int device = 0;
  cudaGetDevice(&device);
  static std::atomic<int> cached[64];  // 0 (static zero): not yet asked
  if (device < 0 || device >= 64) return 132;
  int count = cached[device].load();
  if (count == 0) {
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
    count = count > 0 ? count : 132;
    cached[device] = count;
  }
  return count;
}

// The layouts built: for one-row inputs every one, for more rows a warp per row (cuBLAS is faster there anyway).
constexpr GemvLayout kLayouts[] = {{1, 1}, {2, 1}, {1, 2}, {1, 4}};

// What an SM that is given the most blocks must read, in weight rows: blocks are dealt out evenly over the SMs (one
// wave, or several that the scheduler fills as blocks finish), so the busiest SM holds ceil(blocks / SMs) of them.
double busiest_sm_rows(GemvLayout l, int64_t rows, int sms) {
  const int64_t rows_per_block = int64_t(kGemvWarps / l.split) * l.rows_per_warp;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  return double((blocks + sms - 1) / sms) * double(rows_per_block);
}

template <typename T, int M, int kRows, int kSplit, bool kSwiGLU>
void launch_gemv(const void* x, const void* w, const void* bias, void* out, int64_t N, int64_t K,
                 cudaStream_t stream) {
  const int64_t units = kSwiGLU ? N : (N + kRows - 1) / kRows;
  detail::launch_kernel(gemv_kernel<T, M, kRows, kSplit, kSwiGLU>, dim3(detail::blocks_for(units, kGemvWarps / kSplit)),
                        dim3(kGemvThreads), 0, stream, static_cast<const T*>(x), static_cast<const T*>(w),
                        static_cast<const T*>(bias), static_cast<T*>(out), N, K);
}

template <typename T, int M, bool kSwiGLU>
void launch_layout(GemvLayout l, const void* x, const void* w, const void* bias, void* out, int64_t N, int64_t K,
                   cudaStream_t stream) {
  if constexpr (kSwiGLU) {
    if (l.split == 2) return launch_gemv<T, M, 2, 2, true>(x, w, bias, out, N, K, stream);
    return launch_gemv<T, M, 2, 1, true>(x, w, bias, out, N, K, stream);
  } else if constexpr (M == 1) {
    if (l.rows_per_warp == 2) return launch_gemv<T, M, 2, 1, false>(x, w, bias, out, N, K, stream);
    if (l.split == 2) return launch_gemv<T, M, 1, 2, false>(x, w, bias, out, N, K, stream);
    if (l.split == 4) return launch_gemv<T, M, 1, 4, false>(x, w, bias, out, N, K, stream);
    return launch_gemv<T, M, 1, 1, false>(x, w, bias, out, N, K, stream);
  } else {
    launch_gemv<T, M, 1, 1, false>(x, w, bias, out, N, K, stream);
  }
}

template <bool kSwiGLU>
void launch_any(Element e, GemvLayout l, const void* x, const void* w, const void* bias, void* out, int64_t M,
                int64_t N, int64_t K, cudaStream_t stream) {
  detail::dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    switch (M) {
      case 1: launch_layout<T, 1, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 2: launch_layout<T, 2, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 3: launch_layout<T, 3, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 4: launch_layout<T, 4, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 5: launch_layout<T, 5, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 6: launch_layout<T, 6, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 7: launch_layout<T, 7, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      case 8: launch_layout<T, 8, kSwiGLU>(l, x, w, bias, out, N, K, stream); break;
      default: break;  // the caller keeps M <= kMaxGemvRows
    }
  });
}

}  // namespace

GemvLayout choose_gemv_layout(int64_t M, int64_t N, bool swiglu) {
  if (M != 1) return {swiglu ? 2 : 1, 1};
  const int sms = sm_count();
  if (swiglu) {  // rows in pairs: a warp per pair, or two per pair
    const GemvLayout one{2, 1}, two{2, 2};
    return busiest_sm_rows(two, 2 * N, sms) < 0.99 * busiest_sm_rows(one, 2 * N, sms) ? two : one;
  }
  GemvLayout best = kLayouts[0];
  for (const GemvLayout& l : kLayouts) {  // the first of the least loaded (fewer slices: fewer partial sums)
    if (busiest_sm_rows(l, N, sms) < 0.99 * busiest_sm_rows(best, N, sms)) best = l;
  }
  return best;
}

bool gemv_layout_built(GemvLayout l, int64_t M, bool swiglu) {
  if (swiglu) return l.rows_per_warp == 2 && (l.split == 1 || l.split == 2);
  if (M != 1) return l.rows_per_warp == 1 && l.split == 1;
  for (const GemvLayout& built : kLayouts) {
    if (built.rows_per_warp == l.rows_per_warp && built.split == l.split) return true;
  }
  return false;
}

void gemv(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t N, int64_t K,
          cudaStream_t stream, GemvLayout layout) {
  if (M == 0 || N == 0) return;
  if (layout.rows_per_warp == 0) layout = choose_gemv_layout(M, N, false);
  launch_any<false>(e, layout, x, w, bias, out, M, N, K, stream);
}

void gemv_swiglu(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t I,
                 int64_t K, cudaStream_t stream, GemvLayout layout) {
  if (M == 0 || I == 0) return;
  if (layout.rows_per_warp == 0) layout = choose_gemv_layout(M, I, true);
  launch_any<true>(e, layout, x, w, bias, out, M, I, K, stream);
}

}  // namespace granite::kernels::launch
