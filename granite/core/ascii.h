#pragma once
// ASCII-only case folding, independent of the C locale (std::tolower follows it): file extensions, HTML tags, secret
// key names and other protocol text are matched case-insensitively in ASCII only.
#include <string>
#include <string_view>

namespace granite {

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c; }

inline std::string ascii_lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace granite
