#include "granite/tokenizer/byte_level.h"

#include "granite/tokenizer/unicode.h"

namespace granite {

namespace {
std::string utf8_of(int32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}
}  // namespace

ByteLevel::ByteLevel() {
  cp_to_byte_.fill(-1);
  int32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byte_to_cp_[b] = printable ? b : next++;
    byte_to_utf8_[b] = utf8_of(byte_to_cp_[b]);
    cp_to_byte_[byte_to_cp_[b]] = int16_t(b);
  }
}

std::string ByteLevel::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_to_utf8_[b];
  return out;
}

std::string ByteLevel::decode(std::string_view token) const {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    int32_t cp = 0;
    i += size_t(utf8_next(token, i, &cp));
    if (cp >= 512 || cp_to_byte_[cp] < 0) return std::string(token);  // not a byte-level token: keep it whole
    out += char(cp_to_byte_[cp]);
  }
  return out;
}

}  // namespace granite
