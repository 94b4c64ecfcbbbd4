#pragma once
// Small string helpers the library uses in many places (C++17 has no std::string::ends_with).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace granite {

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The integer `text` starts with (std::stoll's syntax); `used` = the characters it took, 0 when there is none.
inline int64_t leading_integer(const std::string& text, size_t& used) {
  used = 0;
  try {
    return std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
    return -1;
  }
}

}  // namespace granite
