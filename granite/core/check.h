#pragma once
// Loud, specific errors (house rule 12): GRANITE_CHECK(cond, parts...) throws granite::Error whose message is the
// parts streamed together, so callers name the offending values, e.g.
//   GRANITE_CHECK(H % Hkv == 0, "num_attention_heads (", H, ") must be divisible by num_key_value_heads (", Hkv, ")");
#include <sstream>
#include <stdexcept>
#include <string>

namespace granite {

// Every error the library raises on bad input. Apps catch it, print what(), and exit non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
[[noreturn]] void throw_error(const std::string& message);
}  // namespace detail

}  // namespace granite

#define GRANITE_CHECK(cond, ...)                                        \
  do {                                                                  \
    if (!(cond)) ::granite::detail::throw_error(::granite::detail::concat(__VA_ARGS__)); \
  } while (0)

#define GRANITE_FAIL(...) ::granite::detail::throw_error(::granite::detail::concat(__VA_ARGS__))
