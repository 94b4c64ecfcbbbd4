#pragma once
// Exact deduplication key: SHA-256 of a document's bytes (the Granite Code paper, §2: "SHA256 hash is computed on the
// document content"), computed with OpenSSL's libcrypto.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace granite {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
std::string to_hex(const Sha256Digest& digest);

// The first 128 bits of a digest: the key the exact-dedup set stores (half the memory; a collision among 2^64
// documents has probability ~2^-64).
struct DigestKey {
  uint64_t hi = 0, lo = 0;
  bool operator==(const DigestKey& o) const { return hi == o.hi && lo == o.lo; }
};
DigestKey digest_key(const Sha256Digest& digest);
struct DigestKeyHash {
  size_t operator()(const DigestKey& k) const { return size_t(k.lo); }  // already uniformly distributed
};

}  // namespace granite
