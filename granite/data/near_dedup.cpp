#include "granite/data/near_dedup.h"

#include <algorithm>
#include <future>
#include <numeric>

#include "granite/core/check.h"
#include "granite/core/thread_pool.h"
#include "granite/data/minhash.h"

namespace granite {
namespace {

// Union by size; find() without path compression is read-only, so buckets can query it from several threads
// while no union happens (depth stays O(log n) with union by size).
class Clusters {
 public:
  explicit Clusters(int64_t n) : parent_(size_t(n)), size_(size_t(n), 1) {
    std::iota(parent_.begin(), parent_.end(), int64_t(0));
  }
  int64_t find(int64_t x) const {
    while (parent_[size_t(x)] != x) x = parent_[size_t(x)];
    return x;
  }
  void join(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a == b) return;
    if (size_[size_t(a)] < size_[size_t(b)]) std::swap(a, b);
    parent_[size_t(b)] = a;
    size_[size_t(a)] += size_[size_t(b)];
  }

 private:
  std::vector<int64_t> parent_, size_;
};

struct Edge {
  int64_t a, b;  // a < b
  double similarity;
};

struct Bucket {
  size_t begin, end;  // into the sorted (key, document) entries
};

// Step 2 for one bucket: compare each document with the representatives so far.
std::vector<Edge> verify_bucket(const std::vector<std::pair<uint64_t, int64_t>>& entries, const Bucket& bucket,
                                const Clusters& clusters, const NearDedupInput& input, int64_t& comparisons) {
  std::vector<Edge> edges;
  std::vector<int64_t> reps;
  std::vector<std::vector<uint64_t>> rep_shingles;
  for (size_t e = bucket.begin; e < bucket.end; ++e) {
    const int64_t doc = entries[e].second;
    const int64_t root = clusters.find(doc);
    bool joined = false;
    for (int64_t r : reps) joined = joined || clusters.find(r) == root;
    if (joined) continue;  // an earlier band already verified it into a representative's cluster
    std::vector<uint64_t> shingles = input.shingles(doc);
    for (size_t r = 0; r < reps.size() && !joined; ++r) {
      ++comparisons;
      const double similarity = jaccard(rep_shingles[r], shingles);
      if (similarity >= input.threshold) {
        edges.push_back({reps[r], doc, similarity});
        joined = true;
      }
    }
    if (!joined && reps.size() < size_t(kMaxRepresentatives)) {
      reps.push_back(doc);
      rep_shingles.push_back(std::move(shingles));
    }
  }
  return edges;
}

}  // namespace

std::vector<NearDuplicate> find_near_duplicates(const NearDedupInput& input, ThreadPool& pool,
                                                NearDedupStats* stats) {
  GRANITE_CHECK(input.documents >= 0 && input.bands > 0 && input.eligible &&
                    int64_t(input.eligible->size()) == input.documents && (input.documents == 0 || input.band_keys),
                "find_near_duplicates: inconsistent input");
  NearDedupStats local;
  Clusters clusters(input.documents);
  std::vector<int64_t> matched(size_t(input.documents), -1);
  std::vector<double> similarity(size_t(input.documents), 0);
  std::vector<bool> matched_earlier(size_t(input.documents), false);
  // 1. A band's (key, document) pairs sorted; ties in document order. The next band is sorted on its own thread
  // while this one is verified, so the serial sort is off the critical path (two bands in memory at a time).
  using Entries = std::vector<std::pair<uint64_t, int64_t>>;
  auto sorted_band = [&input](int band) {
    Entries entries;
    for (int64_t d = 0; d < input.documents; ++d)
      if ((*input.eligible)[size_t(d)])
        entries.emplace_back(input.band_keys[size_t(d) * size_t(input.bands) + size_t(band)], d);
    std::sort(entries.begin(), entries.end());
    return entries;
  };
  std::future<Entries> next_band = std::async(std::launch::async, sorted_band, 0);
  for (int band = 0; band < input.bands; ++band) {
    const Entries entries = next_band.get();
    if (band + 1 < input.bands) next_band = std::async(std::launch::async, sorted_band, band + 1);
    std::vector<Bucket> buckets;
    for (size_t i = 0; i < entries.size();) {
      size_t j = i + 1;
      while (j < entries.size() && entries[j].first == entries[i].first) ++j;
      if (j - i >= 2) buckets.push_back({i, j});
      i = j;
    }
    local.buckets += int64_t(buckets.size());
    // 2. Verify buckets in parallel against this band's snapshot of the clusters.
    std::vector<std::vector<Edge>> edges(buckets.size());
    std::vector<int64_t> comparisons(buckets.size(), 0);
    pool.parallel_for(int64_t(buckets.size()), [&](int64_t b) {
      edges[size_t(b)] = verify_bucket(entries, buckets[size_t(b)], clusters, input, comparisons[size_t(b)]);
    });
    // 3. Apply the edges in bucket order (deterministic whatever the thread count).
    for (size_t b = 0; b < buckets.size(); ++b) {
      local.comparisons += comparisons[b];
      for (const Edge& edge : edges[b]) {
        ++local.edges;
        clusters.join(edge.a, edge.b);
        // A document's evidence is its first edge to an earlier document; a representative that only ever
        // matched later documents keeps its first edge to one of them.
        if (!matched_earlier[size_t(edge.b)]) {
          matched[size_t(edge.b)] = edge.a;
          similarity[size_t(edge.b)] = edge.similarity;
          matched_earlier[size_t(edge.b)] = true;
        }
        if (matched[size_t(edge.a)] < 0) {
          matched[size_t(edge.a)] = edge.b;
          similarity[size_t(edge.a)] = edge.similarity;
        }
      }
    }
  }
  // Each cluster keeps its first document.
  std::vector<int64_t> first(size_t(input.documents), -1);
  for (int64_t d = 0; d < input.documents; ++d) {
    int64_t root = clusters.find(d);
    if (first[size_t(root)] < 0) first[size_t(root)] = d;
  }
  std::vector<NearDuplicate> out;
  for (int64_t d = 0; d < input.documents; ++d) {
    const int64_t kept = first[size_t(clusters.find(d))];
    if (kept != d) out.push_back({d, matched[size_t(d)], kept, similarity[size_t(d)]});
  }
  if (stats) *stats = local;
  return out;
}

}  // namespace granite
