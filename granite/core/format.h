#pragma once
// Rendering values for error messages.
#include <sstream>
#include <string>
#include <vector>

namespace granite {

// {4, 8} -> "[4, 8]" (shapes, offsets, id lists).
template <typename T>
std::string list_string(const std::vector<T>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

}  // namespace granite
