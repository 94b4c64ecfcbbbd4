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
// Two forms pair rows in a warp and finish in its epilogue, so an elementwise kernel and its launch go away:
// - SwiGLU reads a packed gate/up weight (2I, K): a warp owns gate row n and up row I + n and writes
//   silu(gate) * up, rounded as addmm then silu_mul;
// - rope reads a packed q/k/v weight ((Hq + 2 Hk) D, K): a warp owns rows d and d + D/2 of one head, rotates them
//   (q, k) as the rope kernel does and writes q out and k, v into the KV cache (as rope_into_cache does).
#include <atomic>
#include <type_traits>

#include "granite/kernels/kernel_common.cuh"

namespace granite::kernels::launch {

namespace {

using detail::round_to;
using detail::Scalar;

constexpr int kGemvThreads = 256, kGemvWarps = kGemvThreads / 32;

enum Form { kPlain, kSwiGLU, kRope };

// The weight row r (< kRows) of work unit u. Plain: rows u * kRows + r of N. SwiGLU: rows u and N + u (N = I
// outputs). Rope: rows d and d + D/2 of head u / (D/2) (N = (Hq + 2 Hk) D/2 pairs).
template <int kForm, int kRows>
__device__ inline int64_t row_of(int64_t unit, int r, int64_t N, int64_t D) {
  if constexpr (kForm == kSwiGLU) return unit + r * N;
  if constexpr (kForm == kRope) return (unit / (D / 2)) * D + unit % (D / 2) + r * (D / 2);
  return unit * kRows + r;
}

// The rope form's epilogue for input row m: q_lo = row d, q_hi = row d + D/2 of head `head`, as the projection
// stores them (rounded), then rope_kernel's arithmetic with T = 1 (cos/sin of batch row m) and its destinations.
template <typename T>
__device__ inline void rope_epilogue(const RopeArgs& a, int64_t m, int64_t head, int64_t d, float x1, float x2) {
  const int64_t half = a.D / 2;
  T* dst;
  if (head >= a.Hq + a.Hk) {  // v: copied
    const int64_t slot = a.kv_out.slots != nullptr ? a.kv_out.slots[0] : a.kv_out.first;
    dst = static_cast<T*>(a.v_out) + m * a.kv_out.batch + (head - a.Hq - a.Hk) * a.kv_out.head + slot * a.kv_out.time;
    dst[d] = Scalar<T>::make(x1);
    dst[d + half] = Scalar<T>::make(x2);
    return;
  }
  if (head < a.Hq) {
    dst = static_cast<T*>(a.q_out) + (m * a.Hq + head) * a.D;
  } else {
    const int64_t slot = a.kv_out.slots != nullptr ? a.kv_out.slots[0] : a.kv_out.first;
    dst = static_cast<T*>(a.k_out) + m * a.kv_out.batch + (head - a.Hq) * a.kv_out.head + slot * a.kv_out.time;
  }
  detail::rotate_pair<T>(x1, x2, static_cast<const T*>(a.cos) + m * a.cs_batch,
                         static_cast<const T*>(a.sin) + m * a.cs_batch, d, half, dst);
}

// One row of x, two weight rows a warp: at most 64 registers, so 4 blocks (32 warps) fit an SM instead of 3.
template <typename T, int M, int kRows, int kSplit, int kForm>
__global__ void __launch_bounds__(kGemvThreads, M == 1 && kRows == 2 ? 4 : 1)
    gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ out,
                int64_t N, int64_t K, RopeArgs rope) {
  static_assert(kForm == kPlain || kRows == 2, "SwiGLU and rope pair two rows per warp");
  constexpr int V = 16 / sizeof(T), kUnroll = 4, kUnits = kGemvWarps / kSplit;
  constexpr int64_t kStep = int64_t(kSplit) * 32 * V;  // from one of a lane's vectors to its next
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, part = warp % kSplit;
  // Outputs of unit u: u * kRows + r (plain, N outputs), u (SwiGLU, N outputs), pair u (rope, N pairs).
  const int64_t unit = int64_t(blockIdx.x) * kUnits + warp / kSplit;
  const T* rows[kRows];
  bool live[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t n = row_of<kForm, kRows>(unit, r, N, rope.D);
    live[r] = kForm == kPlain ? n < N : unit < N;
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
  if constexpr (kForm != kPlain) {
    if (unit >= N) return;
    const int64_t r0 = row_of<kForm, kRows>(unit, 0, N, rope.D), r1 = row_of<kForm, kRows>(unit, 1, N, rope.D);
    const float b0 = bias != nullptr ? Scalar<T>::load(bias + r0) : 0.f;
    const float b1 = bias != nullptr ? Scalar<T>::load(bias + r1) : 0.f;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float y0 = round_to<T>(acc[0][m] + b0), y1 = round_to<T>(acc[1][m] + b1);  // as the GEMM stores them
      if constexpr (kForm == kSwiGLU) {
        out[m * N + unit] = Scalar<T>::make(__fmul_rn(detail::silu_rounded<T>(y0), y1));
      } else {
        rope_epilogue<T>(rope, m, unit / (rope.D / 2), unit % (rope.D / 2), y0, y1);
      }
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

// The layouts built: for one-row inputs every one, for more rows a warp per row (cuBLAS is faster there anyway);
// the paired forms (SwiGLU, rope) {2, 1} and {2, 2}.
constexpr GemvLayout kLayouts[] = {{1, 1}, {2, 1}, {1, 2}, {1, 4}};

// What an SM that is given the most blocks must read, in weight rows: blocks are dealt out evenly over the SMs (one
// wave, or several that the scheduler fills as blocks finish), so the busiest SM holds ceil(blocks / SMs) of them.
double busiest_sm_rows(GemvLayout l, int64_t rows, int sms) {
  const int64_t rows_per_block = int64_t(kGemvWarps / l.split) * l.rows_per_warp;
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  return double((blocks + sms - 1) / sms) * double(rows_per_block);
}

// The arguments every form's launch shares.
struct GemvCall {
  const void *x, *w, *bias;
  void* out;
  int64_t N, K;
  const RopeArgs& rope;
  cudaStream_t stream;
};

template <typename T, int M, int kRows, int kSplit, int kForm>
void launch_gemv(const GemvCall& c) {
  const int64_t units = kForm == kPlain ? (c.N + kRows - 1) / kRows : c.N;
  detail::launch_kernel(gemv_kernel<T, M, kRows, kSplit, kForm>, dim3(detail::blocks_for(units, kGemvWarps / kSplit)),
                        dim3(kGemvThreads), 0, c.stream, static_cast<const T*>(c.x), static_cast<const T*>(c.w),
                        static_cast<const T*>(c.bias), static_cast<T*>(c.out), c.N, c.K, c.rope);
}

template <typename T, int M, int kForm>
void launch_layout(GemvLayout l, const GemvCall& c) {
  if constexpr (kForm != kPlain) {
    if (l.split == 2) return launch_gemv<T, M, 2, 2, kForm>(c);
    return launch_gemv<T, M, 2, 1, kForm>(c);
  } else if constexpr (M == 1) {
    if (l.rows_per_warp == 2) return launch_gemv<T, M, 2, 1, kPlain>(c);
    if (l.split == 2) return launch_gemv<T, M, 1, 2, kPlain>(c);
    if (l.split == 4) return launch_gemv<T, M, 1, 4, kPlain>(c);
    return launch_gemv<T, M, 1, 1, kPlain>(c);
  } else {
    launch_gemv<T, M, 1, 1, kPlain>(c);
  }
}

template <int kForm>
void launch_any(Element e, GemvLayout l, int64_t M, const GemvCall& c) {
  detail::dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    switch (M) {
      case 1: launch_layout<T, 1, kForm>(l, c); break;
      case 2: launch_layout<T, 2, kForm>(l, c); break;
      case 3: launch_layout<T, 3, kForm>(l, c); break;
      case 4: launch_layout<T, 4, kForm>(l, c); break;
      case 5: launch_layout<T, 5, kForm>(l, c); break;
      case 6: launch_layout<T, 6, kForm>(l, c); break;
      case 7: launch_layout<T, 7, kForm>(l, c); break;
      case 8: launch_layout<T, 8, kForm>(l, c); break;
      default: break;  // the caller keeps M <= kMaxGemvRows
    }
  });
}

}  // namespace

GemvLayout choose_gemv_layout(int64_t M, int64_t N, bool paired) {
  if (M != 1) return {paired ? 2 : 1, 1};
  const int sms = sm_count();
  if (paired) {  // N pairs of rows: a warp per pair, or two per pair
    const GemvLayout one{2, 1}, two{2, 2};
    return busiest_sm_rows(two, 2 * N, sms) < 0.99 * busiest_sm_rows(one, 2 * N, sms) ? two : one;
  }
  GemvLayout best = kLayouts[0];
  for (const GemvLayout& l : kLayouts) {  // the first of the least loaded (fewer slices: fewer partial sums)
    if (busiest_sm_rows(l, N, sms) < 0.99 * busiest_sm_rows(best, N, sms)) best = l;
  }
  return best;
}

bool gemv_layout_built(GemvLayout l, int64_t M, bool paired) {
  if (paired) return l.rows_per_warp == 2 && (l.split == 1 || l.split == 2);
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
  launch_any<kPlain>(e, layout, M, {x, w, bias, out, N, K, RopeArgs{}, stream});
}

void gemv_swiglu(Element e, const void* x, const void* w, const void* bias, void* out, int64_t M, int64_t I,
                 int64_t K, cudaStream_t stream, GemvLayout layout) {
  if (M == 0 || I == 0) return;
  if (layout.rows_per_warp == 0) layout = choose_gemv_layout(M, I, true);
  launch_any<kSwiGLU>(e, layout, M, {x, w, bias, out, I, K, RopeArgs{}, stream});
}

void gemv_rope(Element e, const void* x, const void* w, const void* bias, int64_t K, const RopeArgs& rope,
               cudaStream_t stream, GemvLayout layout) {
  const int64_t pairs = (rope.Hq + 2 * rope.Hk) * (rope.D / 2);
  if (rope.B == 0 || pairs == 0) return;
  if (layout.rows_per_warp == 0) layout = choose_gemv_layout(rope.B, pairs, true);
  launch_any<kRope>(e, layout, rope.B, {x, w, bias, nullptr, pairs, K, rope, stream});
}

}  // namespace granite::kernels::launch
