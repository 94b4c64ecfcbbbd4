#include "granite/tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "granite/core/check.h"

namespace granite {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if none (Unicode Table 3-7, well-formed byte sequences).
size_t valid_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const size_t n = s.size();
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, uint8_t lo = 0x80, uint8_t hi = 0xBF) { return k < n && b(k) >= lo && b(k) <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0, 0xBF) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

// Bytes a maximal invalid subpart starting at s[i] covers (at least 1): the lead byte plus the continuation bytes
// that could still have started a valid sequence.
size_t invalid_subpart_length(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  size_t expect = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
  size_t k = 1;
  for (; k < expect && i + k < s.size(); ++k) {
    // the second byte's valid range depends on the lead byte
    uint8_t lo = 0x80, hi = 0xBF, d = static_cast<uint8_t>(s[i + k]);
    if (k == 1) {
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (d < lo || d > hi) break;
  }
  return k;
}

}  // namespace

size_t first_invalid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t len = valid_sequence_length(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view text, const std::string& what) {
  const size_t i = first_invalid_utf8(text);
  GRANITE_CHECK(i == std::string_view::npos, what, ": invalid UTF-8 at byte ", i, " (0x", std::hex,
                int(static_cast<uint8_t>(text[i])), std::dec, ")");
}

int utf8_next(std::string_view text, size_t pos, int32_t* codepoint) {
  utf8proc_int32_t cp = 0;
  auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                            utf8proc_ssize_t(text.size() - pos), &cp);
  GRANITE_CHECK(n > 0, "invalid UTF-8 at byte ", pos);
  *codepoint = cp;
  return int(n);
}

bool is_numeric(int32_t codepoint) {
  auto cat = utf8proc_category(codepoint);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

std::string nfc(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), utf8proc_ssize_t(text.size()), &out,
                        utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  GRANITE_CHECK(n >= 0, "NFC normalization failed: ", utf8proc_errmsg(n));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), size_t(n));
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_sequence_length(s, i);
    if (len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += invalid_subpart_length(s, i);
    }
  }
  return out;
}

}  // namespace granite
