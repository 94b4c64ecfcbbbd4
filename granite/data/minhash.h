#pragma once
// MinHash signatures and LSH band keys for near-duplicate detection, as BigCode deduplicated The Stack / StarCoder
// data (bigcode-dataset/near_deduplication, on datasketch) and as the Granite Code paper describes it (§2: MinHash,
// LSH bucketing, then Jaccard similarity >= 0.7 within a bucket).
//   shingles   the text is split into words at every character outside [A-Za-z0-9_] (BigCode's NON_ALPHA), ASCII
//              lower-cased; a shingle is `shingle_size` consecutive words (5, as BigCode). Texts with fewer words
//              have no shingles and take no part in near deduplication. Each shingle is a 64-bit xxHash3 value.
//   signature  num_perm (256) values: for permutation i, min over shingles h of ((a_i * h + b_i) mod (2^61 - 1))
//              truncated to 32 bits -- datasketch's universal hashing of 32-bit values (h is the 64-bit shingle
//              hash folded to 32 bits), with a_i, b_i < 2^32 drawn from a generator seeded with `seed`.
//   bands      the signature cut into `bands` bands of `rows` values; a band's key is the xxHash3 of its values
//              seeded with the band index. Documents sharing any band key are candidates. bands x rows defaults to
//              datasketch's optimum for the threshold (equal weights on the false-positive and false-negative
//              areas): 25 x 10 for 0.7 with 256 permutations.
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace granite {

struct MinHashConfig {
  int num_perm = 256;
  int shingle_size = 5;
  double threshold = 0.7;  // Jaccard similarity at or above which two documents are near duplicates
  int bands = 0;           // 0 with rows = 0: chosen by lsh_parameters(threshold, num_perm)
  int rows = 0;
  uint64_t seed = 42;
};

// datasketch's _optimal_param: the (bands, rows) with bands * rows <= num_perm minimising the mean of the
// false-positive area (below the threshold) and the false-negative area (above it) of the S-curve.
std::pair<int, int> lsh_parameters(double threshold, int num_perm);

// Sorted, unique 64-bit hashes of a text's word shingles (empty when it has fewer than shingle_size words).
std::vector<uint64_t> shingle_hashes(std::string_view text, int shingle_size);
// |a ∩ b| / |a ∪ b| of two sorted unique sets; 0 when both are empty.
double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

class MinHasher {
 public:
  explicit MinHasher(const MinHashConfig& config);  // validates the config (errors name the key and value)

  int bands() const { return bands_; }
  int rows() const { return rows_; }
  const MinHashConfig& config() const { return config_; }

  // num_perm values; all 0xffffffff for an empty set.
  std::vector<uint32_t> signature(const std::vector<uint64_t>& shingles) const;
  // bands() keys of a signature.
  std::vector<uint64_t> band_keys(const std::vector<uint32_t>& signature) const;

 private:
  MinHashConfig config_;
  int bands_ = 0, rows_ = 0;
  std::vector<uint32_t> a_, b_;
};

}  // namespace granite
