#pragma once
// What the fused inference kernels share (inference_kernels.cu, gemv_kernels.cu): element loads and PyTorch's
// rounding, block reductions, the element-type dispatch, and overlapped launches.
//
// Overlapped launches (Hopper's programmatic dependent launch): a kernel launched with the programmatic stream
// serialization attribute may start while the kernel before it in the stream is still running, once every block of
// that one has said so (allow_next_kernel) or exited. Until its own wait_for_previous_kernel() returns it may only
// read what no kernel of the step writes (the weights: an inference step never writes them); after it, everything
// the stream ordered before it is done and visible. A decode step is ~250 kernels of 3-40 us, so each one's start-up and tail are a real share of it:
// the GEMVs load their first weights while the kernel before them finishes. Every kernel launched this way calls
// wait_for_previous_kernel() in every block before touching anything else (before any early return), so the stream
// order still holds transitively. Off below sm_90, before CUDA 12.3, when switched off (set_overlapped_launches), or
// when the driver refuses such a launch (then a plain one goes out).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "granite/kernels/inference_launchers.h"

namespace granite::kernels::launch::detail {

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
__device__ inline float round_to(float v) {
  const T r = Scalar<T>::make(v);
  return Scalar<T>::load(&r);
}

// PyTorch's silu in fp32 (g / (1 + exp(-g)), c10::cuda::compat::exp(float) is ::expf), stored as T.
template <typename T>
__device__ inline float silu_rounded(float g) {
  return round_to<T>(g / (1.f + expf(-g)));
}

// Rotary embedding of one (d, d + D/2) pair ("rotate_half" layout) into dst, as PyTorch computes
// rotated = cat(-x2, x1); out = x * cos + rotated * sin: three rounded ops per element,
// out[d] = r(r(x1 cos[d]) + r(-x2 sin[d])), out[d+h] = r(r(x2 cos[d+h]) + r(x1 sin[d+h])). c, s: the row's cos/sin.
// __fmul_rn / __fadd_rn: never contracted into an FMA (which would skip a rounding PyTorch does in fp32 too).
template <typename T>
__device__ inline void rotate_pair(float x1, float x2, const T* c, const T* s, int64_t d, int64_t half, T* dst) {
  const float lo = __fadd_rn(round_to<T>(__fmul_rn(x1, Scalar<T>::load(c + d))),
                             round_to<T>(__fmul_rn(-x2, Scalar<T>::load(s + d))));
  const float hi = __fadd_rn(round_to<T>(__fmul_rn(x2, Scalar<T>::load(c + d + half))),
                             round_to<T>(__fmul_rn(x1, Scalar<T>::load(s + d + half))));
  dst[d] = Scalar<T>::make(lo);
  dst[d + half] = Scalar<T>::make(hi);
}

__device__ inline void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ inline void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device overlap (programmatic dependent launch): switched on and sm_90 or newer.
bool overlap_on_current_device();

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic serialization attribute when
// overlap_on_current_device(). The kernel must follow the contract above.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   const Args&... args) {
#if CUDART_VERSION >= 12030
  if (overlap_on_current_device()) {
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = attribute;
    config.numAttrs = 1;
    if (cudaLaunchKernelEx(&config, kernel, Params(args)...) == cudaSuccess) return;
    // Not taken (a driver or setting without programmatic launches): clear the error, launch the usual way, which
    // reports any error of its own (launch::last_error()).
    (void)cudaGetLastError();
  }
#endif
  kernel<<<grid, block, smem, stream>>>(Params(args)...);
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

inline unsigned blocks_for(int64_t n, int64_t per_block) { return unsigned((n + per_block - 1) / per_block); }

}  // namespace granite::kernels::launch::detail
