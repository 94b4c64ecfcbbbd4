#include "granite/data/content_hash.h"

#include <openssl/evp.h>

#include <cstring>

#include "granite/core/check.h"

namespace granite {

Sha256Digest sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int size = 0;
  GRANITE_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) == 1 &&
                    size == out.size(),
                "SHA-256 failed (OpenSSL EVP_Digest)");
  return out;
}

std::string to_hex(const Sha256Digest& digest) {
  static const char* kHex = "0123456789abcdef";
  std::string s(64, '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    s[2 * i] = kHex[digest[i] >> 4];
    s[2 * i + 1] = kHex[digest[i] & 15];
  }
  return s;
}

DigestKey digest_key(const Sha256Digest& digest) {
  DigestKey k;
  std::memcpy(&k.hi, digest.data(), 8);
  std::memcpy(&k.lo, digest.data() + 8, 8);
  return k;
}

}  // namespace granite
