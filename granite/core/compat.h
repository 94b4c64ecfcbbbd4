#pragma once
// Every difference between the LibTorch versions we support (1.13 to 2.11) lives here, and only here.
//   * scaled_dot_product_attention: an ATen op since 2.0; its `scale` argument since 2.1. We use it from 2.1 on and
//     fall back to explicit math attention before that (nn/attention.cpp keeps both paths and tests them against
//     each other on the GPU).
//   * _fused_adamw_: a multi-tensor CUDA kernel since 2.0 (granite/train/adamw.cpp).
//   * c10d: a process group's collectives live on c10d::ProcessGroup in 1.13 and on c10d::Backend (what
//     ProcessGroupGloo / ProcessGroupNCCL derive from) since 2.0, and ProcessGroupNCCL has shutdown() since 2.4
//     (granite/dist/communicator.cpp).
#include <torch/version.h>

#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define GRANITE_HAS_SDPA 1
#else
#define GRANITE_HAS_SDPA 0
#endif

#if TORCH_VERSION_MAJOR >= 2
#define GRANITE_HAS_FUSED_ADAMW 1
#else
#define GRANITE_HAS_FUSED_ADAMW 0
#endif

#if TORCH_VERSION_MAJOR >= 2
#define GRANITE_C10D_BACKEND c10d::Backend
#else
#define GRANITE_C10D_BACKEND c10d::ProcessGroup
#endif

// ProcessGroupNCCL::shutdown() (no arguments) since 2.4: without it PyTorch warns at exit that the process group
// was not destroyed (destroy_process_group); before 2.4 the destructor alone tears it down.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define GRANITE_HAS_NCCL_SHUTDOWN 1
#else
#define GRANITE_HAS_NCCL_SHUTDOWN 0
#endif

namespace granite::compat {

// "1.13.0", "2.11.0": the LibTorch this library was compiled against.
inline const char* torch_version() { return TORCH_VERSION; }
constexpr bool has_sdpa = GRANITE_HAS_SDPA;

}  // namespace granite::compat
