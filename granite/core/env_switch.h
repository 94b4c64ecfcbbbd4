#pragma once
// A feature switch from the environment, for A/B runs: on unless the variable is set to "0"
// (GRANITE_FUSED_KERNELS=0, GRANITE_OVERLAP_LAUNCHES=0). Plain C++: the CUDA sources include it too.
#include <cstdlib>
#include <cstring>

namespace granite {

inline bool env_switch_on(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace granite
