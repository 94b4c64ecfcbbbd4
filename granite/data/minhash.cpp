#include "granite/data/minhash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>

#include "granite/core/check.h"

namespace granite {
namespace {

constexpr uint64_t kMersenne61 = (uint64_t(1) << 61) - 1;

bool is_word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The hot loop of near deduplication. With x, a_i, b_i < 2^32, a_i * x + b_i < 2^64: one widening 32x32->64
// multiply per value (instead of datasketch's 64-bit products modulo 2^61 - 1), which vectorises; target_clones
// compiles an AVX2 version next to the baseline one and picks it at load time where the CPU has it (the unsigned
// 64-bit compare and 32-bit min it needs are not in baseline x86-64's SSE2).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void update_signature(const uint32_t* a, const uint32_t* b, uint32_t* out, size_t n, const uint64_t* shingles,
                      size_t count) {
  for (size_t s = 0; s < count; ++s) {
    const uint64_t x = uint32_t(shingles[s] ^ (shingles[s] >> 32));
    for (size_t p = 0; p < n; ++p) {
      uint64_t v = uint64_t(a[p]) * x + b[p];
      v = (v & kMersenne61) + (v >> 61);  // < 2^61 + 8: one conditional subtraction finishes the reduction
      v = v >= kMersenne61 ? v - kMersenne61 : v;
      const uint32_t t = uint32_t(v);
      out[p] = t < out[p] ? t : out[p];
    }
  }
}

// x^n by squaring: the LSH parameter search evaluates the S-curve a million times, and std::pow was most of the
// tool's start-up.
double integer_power(double x, int n) {
  double result = 1;
  for (; n > 0; n >>= 1, x *= x)
    if (n & 1) result *= x;
  return result;
}

// Midpoint rule on [lo, hi]; the S-curve is smooth, 200 panels agree with scipy's quad to ~1e-6.
template <typename F>
double integrate(F f, double lo, double hi) {
  const int n = 200;
  const double h = (hi - lo) / n;
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += f(lo + (i + 0.5) * h);
  return sum * h;
}

}  // namespace

std::pair<int, int> lsh_parameters(double threshold, int num_perm) {
  GRANITE_CHECK(threshold > 0 && threshold < 1, "near-dedup threshold must be in (0, 1), got ", threshold);
  GRANITE_CHECK(num_perm >= 2, "num_perm must be >= 2, got ", num_perm);
  double best = std::numeric_limits<double>::infinity();
  std::pair<int, int> best_br{1, num_perm};
  for (int b = 1; b <= num_perm; ++b) {
    for (int r = 1; r <= num_perm / b; ++r) {
      auto candidate = [b, r](double s) { return 1 - integer_power(1 - integer_power(s, r), b); };
      double fp = integrate(candidate, 0, threshold);
      double fn = integrate([&](double s) { return 1 - candidate(s); }, threshold, 1);
      double error = 0.5 * fp + 0.5 * fn;
      if (error < best) {
        best = error;
        best_br = {b, r};
      }
    }
  }
  return best_br;
}

std::vector<uint64_t> shingle_hashes(std::string_view text, int shingle_size) {
  // Word hashes first (one pass, no strings), then each n-gram's hash is the xxHash3 of its n word hashes.
  std::vector<uint64_t> words;
  std::string lowered;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_word_char(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && is_word_char(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) break;
    lowered.assign(text.data() + start, i - start);
    for (char& c : lowered)
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    words.push_back(XXH3_64bits(lowered.data(), lowered.size()));
  }
  std::vector<uint64_t> shingles;
  if (int64_t(words.size()) < shingle_size) return shingles;
  shingles.reserve(words.size() - size_t(shingle_size) + 1);
  for (size_t w = 0; w + size_t(shingle_size) <= words.size(); ++w)
    shingles.push_back(XXH3_64bits(words.data() + w, sizeof(uint64_t) * size_t(shingle_size)));
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
  return shingles;
}

double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 0;
  size_t i = 0, j = 0, common = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++common, ++i, ++j;
    }
  }
  return double(common) / double(a.size() + b.size() - common);
}

MinHasher::MinHasher(const MinHashConfig& config) : config_(config) {
  GRANITE_CHECK(config.num_perm >= 2 && config.num_perm <= 4096, "dedup.num_perm must be in [2, 4096], got ",
                config.num_perm);
  GRANITE_CHECK(config.shingle_size >= 1 && config.shingle_size <= 64, "dedup.shingle_size must be in [1, 64], got ",
                config.shingle_size);
  if (config.bands == 0 && config.rows == 0) {
    std::tie(bands_, rows_) = lsh_parameters(config.threshold, config.num_perm);
  } else {
    GRANITE_CHECK(config.bands > 0 && config.rows > 0 && config.bands * config.rows <= config.num_perm,
                  "dedup.bands (", config.bands, ") x dedup.rows (", config.rows,
                  ") must be positive and at most dedup.num_perm (", config.num_perm, ")");
    GRANITE_CHECK(config.threshold > 0 && config.threshold < 1, "dedup.threshold must be in (0, 1), got ",
                  config.threshold);
    bands_ = config.bands;
    rows_ = config.rows;
  }
  // datasketch draws a in [1, p) and b in [0, p) for 32-bit inputs; the shingle hashes are folded to 32 bits here
  // too, and a, b are drawn below 2^32 so that a * x + b fits 64 bits (signature()).
  std::mt19937_64 rng(config.seed);
  std::uniform_int_distribution<uint32_t> draw_a(1, UINT32_MAX - 1), draw_b(0, UINT32_MAX);
  a_.resize(size_t(config.num_perm));
  b_.resize(size_t(config.num_perm));
  for (int p = 0; p < config.num_perm; ++p) {
    a_[size_t(p)] = draw_a(rng);
    b_[size_t(p)] = draw_b(rng);
  }
}

std::vector<uint32_t> MinHasher::signature(const std::vector<uint64_t>& shingles) const {
  std::vector<uint32_t> sig(a_.size(), std::numeric_limits<uint32_t>::max());
  update_signature(a_.data(), b_.data(), sig.data(), a_.size(), shingles.data(), shingles.size());
  return sig;
}

std::vector<uint64_t> MinHasher::band_keys(const std::vector<uint32_t>& signature) const {
  GRANITE_CHECK(signature.size() == a_.size(), "signature has ", signature.size(), " values, expected ", a_.size());
  std::vector<uint64_t> keys(static_cast<size_t>(bands_));
  for (int band = 0; band < bands_; ++band)
    keys[size_t(band)] = XXH3_64bits_withSeed(signature.data() + size_t(band) * size_t(rows_),
                                              sizeof(uint32_t) * size_t(rows_), uint64_t(band));
  return keys;
}

}  // namespace granite
