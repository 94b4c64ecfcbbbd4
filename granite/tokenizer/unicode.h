#pragma once
// The Unicode pieces the tokenizers need, on utf8proc (Debian's libutf8proc; Unicode 15 tables): UTF-8 validation
// with the offending byte offset, code point iteration, numeric category (Rust's char::is_numeric = Nd|Nl|No, which
// HF's Digits pre-tokenizer uses), NFC normalization, and lossy UTF-8 repair as Rust's String::from_utf8_lossy.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace granite {

// Byte offset of the first invalid UTF-8 sequence, or std::string_view::npos when `text` is valid UTF-8.
size_t first_invalid_utf8(std::string_view text);
// Throws granite::Error "<what>: invalid UTF-8 at byte N" unless `text` is valid UTF-8.
void check_utf8(std::string_view text, const std::string& what);
// Decodes the code point at text[pos] (text must be valid UTF-8); returns its byte length.
int utf8_next(std::string_view text, size_t pos, int32_t* codepoint);
bool is_numeric(int32_t codepoint);  // general category N*
std::string nfc(std::string_view text);  // Unicode NFC
// Invalid sequences become U+FFFD, one per maximal invalid subpart (the WHATWG / Rust from_utf8_lossy rule).
std::string utf8_lossy(std::string_view bytes);

}  // namespace granite
