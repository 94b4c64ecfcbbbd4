#pragma once
// A small, fully specified random number generator for data pipelines: the same seed gives the same numbers on every
// platform and standard library (std::uniform_int_distribution and friends are implementation-defined, so a run
// resumed or repeated elsewhere could diverge).
//   * xoshiro256** (Blackman & Vigna, 2018) for the stream, seeded through splitmix64 as its authors recommend;
//   * Rng::derive(seed, a, b): an independent stream per (seed, a, b), e.g. one per sequence index, so random
//     choices are pure functions of their index: nothing to checkpoint, any worker can make any sequence;
//   * uniform_int by Lemire's multiply-and-reject (unbiased), uniform01 from the top 53 bits.
#include <cstdint>

namespace granite {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& word : s_) word = splitmix64(sm);
  }
  // An independent generator for (seed, a, b): the three words are mixed, not added, so (1, 2) and (2, 1) differ.
  static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0) {
    uint64_t sm = seed;
    uint64_t x = splitmix64(sm) ^ a;
    x = splitmix64(x) ^ b;
    return Rng(splitmix64(x));
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n >= 1.
  uint64_t uniform_int(uint64_t n) {
    unsigned __int128 m = (unsigned __int128)next() * n;
    uint64_t low = uint64_t(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = (unsigned __int128)next() * n;
        low = uint64_t(m);
      }
    }
    return uint64_t(m >> 64);
  }
  double uniform01() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  bool bernoulli(double p) { return uniform01() < p; }                // p <= 0 never, p >= 1 always

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace granite
