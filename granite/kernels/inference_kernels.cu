// Fused kernels for inference (no autograd): each replaces a chain of PyTorch elementwise/reduction kernels whose
// launches, not their bytes, bound batch-1 decoding (a 3B decode step is ~1,500 tiny kernels otherwise). Each
// reproduces the composite ops' rounding: every intermediate PyTorch would store in the element type is rounded to
// it here too (round-to-nearest-even), arithmetic in fp32 as PyTorch's opmath. The only difference left is the
// order of the fp32 sum in RMSNorm's mean (a block reduction here, PyTorch's reduce kernel there).
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "granite/core/env_switch.h"
#include "granite/kernels/kernel_common.cuh"

namespace granite::kernels::launch {

namespace {

using detail::round_to;
using detail::Scalar;

// Max over the block, as block_sum (its own shared array: the two may follow each other).
__device__ float block_max(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : -INFINITY;
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total. Once per kernel
// (its shared array is reused without a barrier after the read).
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
// out = weight * y.to(T)  (HF LlamaRMSNorm). With delta, the row is first the residual sum x + delta rounded to T
// (PyTorch's add), which is also stored to sum_out: the residual add and the next norm in one kernel.
template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ delta, T* __restrict__ sum_out,
                                const T* __restrict__ weight, T* __restrict__ out, int64_t C, float eps) {
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  const int64_t base = int64_t(blockIdx.x) * C;
  auto input = [&](int64_t c) {
    const float v = Scalar<T>::load(x + base + c);
    return delta != nullptr ? round_to<T>(__fadd_rn(v, Scalar<T>::load(delta + base + c))) : v;
  };
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = input(c);
    if (sum_out != nullptr) sum_out[base + c] = Scalar<T>::make(v);
    sum = __fadd_rn(sum, __fmul_rn(v, v));  // x.pow(2) is stored before it is summed: no FMA
  }
  const float mean = block_sum(sum) * (1.f / float(C));  // PyTorch MeanOps: acc * factor
  const float inv = rsqrtf(__fadd_rn(mean, eps));
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float y = round_to<T>(__fmul_rn(input(c), inv));
    out[base + c] = Scalar<T>::make(__fmul_rn(Scalar<T>::load(weight + c), y));
  }
}

// rms_norm_kernel's arithmetic with the row read once: each thread holds up to kVecs 16-byte vectors of it in
// registers (a 2560-wide bf16 row is one vector per thread of 320), instead of a chain of dependent loads per thread
// and a second read. Needs C a multiple of 16 bytes' worth of elements and 16-byte aligned rows.
template <typename T, int kVecs>
__global__ void rms_norm_vec_kernel(const T* __restrict__ x, const T* __restrict__ delta, T* __restrict__ sum_out,
                                    const T* __restrict__ weight, T* __restrict__ out, int64_t C, float eps) {
  constexpr int V = 16 / sizeof(T);
  union Vec {
    uint4 raw;
    T e[V];
  };
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  const int64_t base = int64_t(blockIdx.x) * C, vecs = C / V;
  float v[kVecs][V];
  float sum = 0.f;
#pragma unroll
  for (int u = 0; u < kVecs; ++u) {
    const int64_t i = threadIdx.x + int64_t(u) * blockDim.x;
    if (i >= vecs) break;
    Vec a, b;
    a.raw = __ldg(reinterpret_cast<const uint4*>(x + base) + i);
    if (delta != nullptr) b.raw = __ldg(reinterpret_cast<const uint4*>(delta + base) + i);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float xv = Scalar<T>::load(&a.e[j]);
      v[u][j] = delta != nullptr ? round_to<T>(__fadd_rn(xv, Scalar<T>::load(&b.e[j]))) : xv;
      sum = __fadd_rn(sum, __fmul_rn(v[u][j], v[u][j]));
    }
    if (sum_out != nullptr) {
#pragma unroll
      for (int j = 0; j < V; ++j) a.e[j] = Scalar<T>::make(v[u][j]);
      reinterpret_cast<uint4*>(sum_out + base)[i] = a.raw;
    }
  }
  const float mean = block_sum(sum) * (1.f / float(C));
  const float inv = rsqrtf(__fadd_rn(mean, eps));
#pragma unroll
  for (int u = 0; u < kVecs; ++u) {
    const int64_t i = threadIdx.x + int64_t(u) * blockDim.x;
    if (i >= vecs) break;
    Vec wv, o;
    wv.raw = __ldg(reinterpret_cast<const uint4*>(weight) + i);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float y = round_to<T>(__fmul_rn(v[u][j], inv));
      o.e[j] = Scalar<T>::make(__fmul_rn(Scalar<T>::load(&wv.e[j]), y));
    }
    reinterpret_cast<uint4*>(out + base)[i] = o.raw;
  }
}

// One thread per (row, d < D/2) pair, rotated as PyTorch does (detail::rotate_pair). The threads of k's pairs also copy v's two elements when a.v is set (v goes where k goes: a KV cache).
template <typename T>
__global__ void rope_kernel(RopeArgs a, int64_t pairs) {
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= pairs) return;
  const int64_t half = a.D / 2, d = i % half, head_row = i / half;  // head_row over (B, T, Hq + Hk)
  const int64_t H = a.Hq + a.Hk, h = head_row % H, bt = head_row / H, t = bt % a.T, b = bt / a.T;
  const T* src;
  T* dst;
  if (h < a.Hq) {
    src = static_cast<const T*>(a.q) + bt * a.q_row + h * a.D;
    dst = static_cast<T*>(a.q_out) + (bt * a.Hq + h) * a.D;
  } else {
    const int64_t hk = h - a.Hq;
    const int64_t slot = a.kv_out.slots != nullptr ? a.kv_out.slots[t] : a.kv_out.first + t;
    const int64_t at = b * a.kv_out.batch + hk * a.kv_out.head + slot * a.kv_out.time;
    src = static_cast<const T*>(a.k) + bt * a.k_row + hk * a.D;
    dst = static_cast<T*>(a.k_out) + at;
    if (a.v != nullptr) {
      const T* v = static_cast<const T*>(a.v) + bt * a.v_row + hk * a.D;
      T* v_dst = static_cast<T*>(a.v_out) + at;
      v_dst[d] = v[d];
      v_dst[d + half] = v[d + half];
    }
  }
  const T* c = static_cast<const T*>(a.cos) + b * a.cs_batch + t * a.cs_time;
  const T* s = static_cast<const T*>(a.sin) + b * a.cs_batch + t * a.cs_time;
  detail::rotate_pair<T>(Scalar<T>::load(src + d), Scalar<T>::load(src + d + half), c, s, d, half, dst);
}

// PyTorch: silu(g) = g / (1 + exp(-g)) in fp32, stored as T; then * up, rounded.
template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                int64_t n, int64_t in_row, int64_t total) {
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t at = (i / n) * in_row + i % n;
  const float g = Scalar<T>::load(gate + at);
  const float s = detail::silu_rounded<T>(g);
  out[i] = Scalar<T>::make(__fmul_rn(s, Scalar<T>::load(up + at)));
}

// The most 16-byte vectors a key row may have (a thread keeps one row in registers): D <= 128 in bf16/fp16, 64 in
// fp32. The kernel's register array and its launcher's applicability check both use it.
constexpr int kDecodeAttentionMaxRowVecs = 16;

// Attention of one new query per (b, h) over Tk cached keys: a block per (b, h). Scores q.k * scale + mask in fp32
// (each thread a key, its row read with 16-byte loads) into shared memory, softmax there, then P.V with the threads
// in groups of D/V, each group summing every G-th key for its V columns, the groups' partial sums added at the end;
// rounded to T once. GQA reads key/value head h / (H / Hkv) directly (no repeat). All keys masked: zeros.
template <typename T>
__global__ void decode_attention_kernel(DecodeAttentionArgs a) {
  constexpr int V = 16 / sizeof(T), kMaxRowVecs = kDecodeAttentionMaxRowVecs;
  union Vec {
    uint4 raw;
    T e[V];
  };
  extern __shared__ float smem[];
  detail::wait_for_previous_kernel();
  detail::allow_next_kernel();
  const int64_t b = blockIdx.x / a.H, h = blockIdx.x % a.H, hk = h / (a.H / a.Hkv);
  const int D = int(a.D), per_row = D / V, groups = blockDim.x / per_row;
  float* qs = smem;              // D
  float* scores = qs + D;        // Tk
  float* partial = scores + a.Tk;  // groups * D
  const T* q = static_cast<const T*>(a.q) + b * a.q_b + h * a.q_h;
  for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = Scalar<T>::load(q + d);
  __syncthreads();
  const T* keys = static_cast<const T*>(a.k) + b * a.kv_b + hk * a.kv_h;
  const T* mask = a.mask != nullptr && !a.mask_is_bool ? static_cast<const T*>(a.mask) + b * a.mask_b : nullptr;
  const bool* allowed = a.mask != nullptr && a.mask_is_bool ? static_cast<const bool*>(a.mask) + b * a.mask_b : nullptr;
  float local_max = -INFINITY;
  for (int64_t j = threadIdx.x; j < a.Tk; j += blockDim.x) {
    const uint4* row = reinterpret_cast<const uint4*>(keys + j * a.kv_t);
    // the whole key row's loads issued before any is used (D <= 16 vectors: 128 bf16), not one latency per load
    Vec kv[kMaxRowVecs];
#pragma unroll
    for (int c = 0; c < kMaxRowVecs; ++c) {
      if (c < per_row) kv[c].raw = __ldg(row + c);
    }
    float s = 0.f;
#pragma unroll
    for (int c = 0; c < kMaxRowVecs; ++c) {
      if (c < per_row) {
#pragma unroll
        for (int e = 0; e < V; ++e) s = fmaf(qs[c * V + e], Scalar<T>::load(&kv[c].e[e]), s);
      }
    }
    s *= a.scale;
    if (mask != nullptr) s += Scalar<T>::load(mask + j * a.mask_t);
    if (allowed != nullptr && !allowed[j * a.mask_t]) s = -INFINITY;
    scores[j] = s;
    local_max = fmaxf(local_max, s);
  }
  const float top = block_max(local_max);
  float local_sum = 0.f;
  for (int64_t j = threadIdx.x; j < a.Tk; j += blockDim.x) {
    const float p = top == -INFINITY ? 0.f : expf(scores[j] - top);
    scores[j] = p;
    local_sum += p;
  }
  const float total = block_sum(local_sum);  // its barrier also publishes the probabilities
  const int group = threadIdx.x / per_row, column = threadIdx.x % per_row;
  if (group < groups) {
    float acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = 0.f;
    const T* values = static_cast<const T*>(a.v) + b * a.kv_b + hk * a.kv_h + column * V;
    // kKeysInFlight value rows loaded together, then used
    constexpr int kKeysInFlight = 8;
    for (int64_t j0 = group; j0 < a.Tk; j0 += int64_t(groups) * kKeysInFlight) {
      Vec vv[kKeysInFlight];
#pragma unroll
      for (int u = 0; u < kKeysInFlight; ++u) {
        const int64_t j = j0 + int64_t(u) * groups;
        if (j < a.Tk) vv[u].raw = __ldg(reinterpret_cast<const uint4*>(values + j * a.kv_t));
      }
#pragma unroll
      for (int u = 0; u < kKeysInFlight; ++u) {
        const int64_t j = j0 + int64_t(u) * groups;
        if (j < a.Tk) {
          const float p = scores[j];
#pragma unroll
          for (int e = 0; e < V; ++e) acc[e] = fmaf(p, Scalar<T>::load(&vv[u].e[e]), acc[e]);
        }
      }
    }
#pragma unroll
    for (int e = 0; e < V; ++e) partial[group * D + column * V + e] = acc[e];
  }
  __syncthreads();
  T* out = static_cast<T*>(a.out) + (b * a.H + h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int g = 0; g < groups; ++g) o += partial[g * D + d];
    out[d] = Scalar<T>::make(total > 0.f ? o / total : 0.f);
  }
}

}  // namespace

void rms_norm(Element e, const void* x, const void* delta, void* sum_out, const void* weight, void* out, int64_t rows,
              int64_t C, float eps, cudaStream_t stream) {
  if (rows == 0) return;
  detail::dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const auto* xp = static_cast<const T*>(x);
    const auto* dp = static_cast<const T*>(delta);
    auto* sp = static_cast<T*>(sum_out);
    const auto* wp = static_cast<const T*>(weight);
    auto* op = static_cast<T*>(out);
    constexpr int64_t V = 16 / sizeof(T);
    auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    const int64_t vecs = C / V;
    if (C % V == 0 && vecs <= 4 * 1024 && aligned(x) && aligned(delta) && aligned(sum_out) && aligned(weight) &&
        aligned(out)) {
      const int per_thread = vecs <= 1024 ? 1 : (vecs <= 2048 ? 2 : 4);
      const int64_t needed = (vecs + per_thread - 1) / per_thread;
      const int threads = int(((needed + 31) / 32) * 32);
      auto launch_vec = [&](auto kernel) {
        detail::launch_kernel(kernel, dim3(unsigned(rows)), dim3(threads), 0, stream, xp, dp, sp, wp, op, C, eps);
      };
      switch (per_thread) {
        case 1: launch_vec(rms_norm_vec_kernel<T, 1>); break;
        case 2: launch_vec(rms_norm_vec_kernel<T, 2>); break;
        default: launch_vec(rms_norm_vec_kernel<T, 4>); break;
      }
      return;
    }
    // One warp per 256 elements of a row, 32..1024 threads.
    int threads = int(((C + 255) / 256) * 32);
    threads = threads < 32 ? 32 : (threads > 1024 ? 1024 : threads);
    detail::launch_kernel(rms_norm_kernel<T>, dim3(unsigned(rows)), dim3(threads), 0, stream, xp, dp, sp, wp, op, C,
                          eps);
  });
}

void rope(Element e, const RopeArgs& args, cudaStream_t stream) {
  const int64_t pairs = args.B * args.T * (args.Hq + args.Hk) * (args.D / 2);
  if (pairs == 0) return;
  constexpr int threads = 256;
  detail::dispatch(e, [&](auto* type) {
    using E = std::remove_pointer_t<decltype(type)>;
    detail::launch_kernel(rope_kernel<E>, dim3(detail::blocks_for(pairs, threads)), dim3(threads), 0, stream, args,
                          pairs);
  });
}

void silu_mul(Element e, const void* gate, const void* up, void* out, int64_t rows, int64_t n, int64_t in_row,
              cudaStream_t stream) {
  const int64_t total = rows * n;
  if (total == 0) return;
  constexpr int threads = 256;
  detail::dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    detail::launch_kernel(silu_mul_kernel<T>, dim3(detail::blocks_for(total, threads)), dim3(threads), 0, stream,
                          static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n, in_row,
                          total);
  });
}

bool decode_attention(Element e, const DecodeAttentionArgs& args, cudaStream_t stream) {
  const int64_t V = e == Element::kF32 ? 4 : 8;
  if (args.D % V != 0 || args.D / V > kDecodeAttentionMaxRowVecs || args.Hkv <= 0 || args.H % args.Hkv != 0) {
    return false;
  }
  const int64_t groups = kDecodeAttentionThreads / (args.D / V);
  const int64_t bytes = int64_t(sizeof(float)) * (args.D + args.Tk + groups * args.D);
  if (bytes > 48 * 1024) return false;  // beyond the default dynamic shared memory: the caller falls back
  if (args.B * args.H == 0) return true;
  detail::dispatch(e, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    detail::launch_kernel(decode_attention_kernel<T>, dim3(unsigned(args.B * args.H)), dim3(kDecodeAttentionThreads),
                          size_t(bytes), stream, args);
  });
  return true;
}

namespace {
std::atomic<bool>& overlap_flag() {
  static std::atomic<bool> flag{env_switch_on("GRANITE_OVERLAP_LAUNCHES")};
  return flag;
}
}  // namespace

void set_overlapped_launches(bool on) { overlap_flag() = on; }
bool overlapped_launches() { return overlap_flag(); }

bool detail::overlap_on_current_device() {
  if (!overlap_flag()) return false;
  int device = 0;
  cudaGetDevice(&device);
  static std::atomic<int> major[64];  // compute capability major + 1 once known (0, static zero: not yet asked)
  if (device < 0 || device >= 64) return false;
  int known = major[device].load();
  if (known == 0) {
    int m = 0;
    cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, device);
    known = m + 1;
    major[device] = known;
  }
  return known - 1 >= 9;
}

const char* last_error() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

}  // namespace granite::kernels::launch
