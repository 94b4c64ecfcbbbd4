#include "granite/core/device_memory.h"

#if GRANITE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace granite {

#if GRANITE_WITH_CUDA
namespace {
c10::DeviceIndex index_of(const c10::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
}  // namespace
#endif

std::optional<int64_t> peak_allocated_bytes(const c10::Device& device) {
#if GRANITE_WITH_CUDA
  if (device.is_cuda()) {
    // StatType::AGGREGATE (index 0): all pools.
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index_of(device)).allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return std::nullopt;
}

void reset_peak_allocated_bytes(const c10::Device& device) {
#if GRANITE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(index_of(device));
#endif
  (void)device;
}

}  // namespace granite
