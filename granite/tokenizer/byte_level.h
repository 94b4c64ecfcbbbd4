#pragma once
// GPT-2's byte <-> unicode table (openai/gpt-2 encoder.py bytes_to_unicode; HF tokenizers ByteLevel): every byte gets
// a printable code point so BPE vocabularies are plain strings. Bytes 33..126, 161..172 and 174..255 map to
// themselves; the other 68 (controls, space, 127..160, 173) map to 256, 257, ... in byte order. So ' ' is 'Ġ' (U+0120).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace granite {

class ByteLevel {
 public:
  ByteLevel();
  // "a b" -> "aĠb": each byte replaced by its code point's UTF-8.
  std::string encode(std::string_view bytes) const;
  const std::string& encode_byte(uint8_t b) const { return byte_to_utf8_[b]; }
  // Inverse for one token: each code point back to its byte. If any code point is outside the table (possible in
  // added tokens), the token's own UTF-8 bytes are used unchanged, as HF's ByteLevel decoder does. Valid UTF-8 in.
  std::string decode(std::string_view token) const;

 private:
  std::array<std::string, 256> byte_to_utf8_;
  std::array<int32_t, 256> byte_to_cp_;
  std::array<int16_t, 512> cp_to_byte_;  // code points < 512 only; -1 = not in the table
};

}  // namespace granite
