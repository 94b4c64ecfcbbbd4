// MinHash + LSH (granite/data/minhash.h) and near-duplicate clustering (granite/data/near_dedup.h).
#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <sstream>

#include "granite/core/thread_pool.h"
#include "granite/data/minhash.h"
#include "granite/data/near_dedup.h"

using namespace granite;

namespace {

// `n` distinct words "w<seed>_<i>" separated by spaces and punctuation.
std::string words(int n, int seed, const char* sep = " ") {
  std::ostringstream s;
  for (int i = 0; i < n; ++i) s << "w" << seed << "_" << i << (i % 7 == 6 ? ";\n" : sep);
  return s.str();
}

}  // namespace

TEST_CASE("LSH parameters are datasketch's optimum: 25 bands x 10 rows for threshold 0.7 and 256 permutations",
          "[data][minhash]") {
  // Reference values from datasketch.lsh._optimal_param(threshold, num_perm, 0.5, 0.5).
  CHECK(lsh_parameters(0.7, 256) == std::make_pair(25, 10));
  CHECK(lsh_parameters(0.85, 256) == std::make_pair(13, 19));
  CHECK(lsh_parameters(0.7, 128) == std::make_pair(14, 9));
  MinHasher hasher(MinHashConfig{});
  CHECK(hasher.bands() == 25);
  CHECK(hasher.rows() == 10);
  MinHashConfig bad;
  bad.bands = 30;
  bad.rows = 10;
  REQUIRE_THROWS_WITH(MinHasher(bad), Catch::Contains("30") && Catch::Contains("num_perm (256)"));
}

TEST_CASE("shingles are 5-word n-grams over [A-Za-z0-9_] words, ASCII case folded", "[data][minhash]") {
  CHECK(shingle_hashes("a b c d", 5).empty());  // fewer words than a shingle
  auto one = shingle_hashes("a b c d e", 5);
  CHECK(one.size() == 1);
  // Separators and case do not matter; word order does.
  CHECK(shingle_hashes("A(b, c)->d.E", 5) == one);
  CHECK(shingle_hashes("a b c e d", 5) != one);
  // Non-ASCII bytes separate words (BigCode's NON_ALPHA = [^A-Za-z_0-9]): "aéb" is the two words "a" "b".
  CHECK(shingle_hashes("a\xc3\xa9" "b c d e", 5) == one);
  // n words give n - 4 shingles, repeated ones once.
  CHECK(shingle_hashes(words(20, 1), 5).size() == 16);
  CHECK(shingle_hashes("x x x x x x x x", 5).size() == 1);
}

TEST_CASE("Jaccard similarity of sorted sets", "[data][minhash]") {
  CHECK(jaccard({1, 2, 3}, {2, 3, 4}) == Approx(0.5));
  CHECK(jaccard({1, 2}, {1, 2}) == 1.0);
  CHECK(jaccard({}, {}) == 0.0);
  CHECK(jaccard({1}, {}) == 0.0);
}

TEST_CASE("MinHash signatures estimate Jaccard similarity, identical sets share every band key", "[data][minhash]") {
  MinHasher hasher(MinHashConfig{});
  std::vector<uint64_t> a, b;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) a.push_back(rng());
  b.assign(a.begin(), a.begin() + 1500);  // |a ∩ b| = 1500, |a ∪ b| = 2500 -> J = 0.6 after adding 500 new
  for (int i = 0; i < 500; ++i) b.push_back(rng());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const double exact = jaccard(a, b);
  REQUIRE(exact == Approx(0.6));
  auto sa = hasher.signature(a), sb = hasher.signature(b);
  int equal = 0;
  for (size_t i = 0; i < sa.size(); ++i) equal += sa[i] == sb[i];
  // Standard error sqrt(J(1-J)/256) ~ 0.03: 4 sigma.
  CHECK(double(equal) / 256 == Approx(exact).margin(0.12));
  CHECK(hasher.band_keys(sa) == hasher.band_keys(hasher.signature(a)));
  // Same seed, same signature; another seed, another one.
  MinHashConfig other;
  other.seed = 43;
  CHECK(MinHasher(MinHashConfig{}).signature(a) == sa);
  CHECK(MinHasher(other).signature(a) != sa);
}

TEST_CASE("near-duplicate clusters keep their first document, verified by exact Jaccard, for any thread count",
          "[data][minhash][near_dedup]") {
  // 0: base, 1: base with 3 words changed (J ~ 0.9), 2: distinct, 3: exact copy of 2 at the shingle level,
  // 4: base with half replaced (J < 0.7: must stay), 5: tiny (no shingles), 6: copy of 1 (joins 0's cluster).
  std::string base = words(300, 1);
  std::string edited = base;
  for (const char* w : {"w1_10 ", "w1_150 ", "w1_290 "}) edited.replace(edited.find(w), std::string(w).size(), "zz ");
  std::vector<std::string> docs = {base, edited, words(300, 2), words(300, 2, "  "),
                                   base.substr(0, base.size() / 2) + words(150, 3), "tiny", edited};
  MinHasher hasher(MinHashConfig{});
  std::vector<uint64_t> keys;
  std::vector<bool> eligible;
  for (const auto& d : docs) {
    auto sh = shingle_hashes(d, 5);
    eligible.push_back(!sh.empty());
    auto k = sh.empty() ? std::vector<uint64_t>(25, 0) : hasher.band_keys(hasher.signature(sh));
    keys.insert(keys.end(), k.begin(), k.end());
  }
  NearDedupInput input;
  input.documents = int64_t(docs.size());
  input.bands = hasher.bands();
  input.band_keys = keys.data();
  input.eligible = &eligible;
  input.shingles = [&](int64_t d) { return shingle_hashes(docs[size_t(d)], 5); };
  input.threshold = 0.7;
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    NearDedupStats stats;
    auto dups = find_near_duplicates(input, pool, &stats);
    REQUIRE(dups.size() == 3);
    CHECK(dups[0].document == 1);
    CHECK(dups[0].kept == 0);
    CHECK(dups[0].similarity >= 0.7);
    CHECK(dups[0].similarity == Approx(jaccard(shingle_hashes(base, 5), shingle_hashes(edited, 5))));
    CHECK(dups[1].document == 3);
    CHECK(dups[1].kept == 2);
    CHECK(dups[1].similarity == 1.0);
    CHECK(dups[2].document == 6);
    CHECK(dups[2].kept == 0);
    CHECK(stats.edges >= 3);
  }
}
