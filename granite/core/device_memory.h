#pragma once
// Peak memory of a device's caching allocator -- what torch.cuda.max_memory_allocated() reports, so our numbers and
// PyTorch baselines compare. Only CUDA builds of LibTorch have the allocator statistics (c10_cuda); elsewhere, and
// for CPU devices, there is no value.
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>

namespace granite {

std::optional<int64_t> peak_allocated_bytes(const c10::Device& device);
void reset_peak_allocated_bytes(const c10::Device& device);

}  // namespace granite
