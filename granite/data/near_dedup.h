#pragma once
// Near-duplicate clustering over LSH band keys (see minhash.h), in memory bounded by the number of documents, not
// their size: band keys are read from a caller's array (a memory-mapped file in data preparation), shingle sets are
// recomputed on demand for the pairs being verified, and one band is processed at a time.
//   1. For each band, documents are sorted by their key; a run of equal keys is a bucket of candidates.
//   2. In each bucket (in document order) a document is compared with the bucket's representatives so far: if its
//      exact Jaccard similarity with one of them reaches the threshold the pair is an edge, otherwise it becomes a
//      representative (at most kMaxRepresentatives). Pairs already joined by earlier bands are not compared again.
//   3. Edges join documents into clusters (union-find); each cluster keeps its first document (input order) and the
//      rest are near duplicates -- "all but one are marked as duplicates" (Granite Code paper, §2).
// Buckets are verified in parallel against a snapshot of the clusters taken before each band, and edges are applied
// in bucket order, so the result does not depend on the thread count.
#include <cstdint>
#include <functional>
#include <vector>

namespace granite {

class ThreadPool;

struct NearDuplicate {
  int64_t document = 0;    // the dropped document
  int64_t matched = 0;     // the document it was verified against (its cluster may be kept through another one)
  int64_t kept = 0;        // the cluster's first document, which stays
  double similarity = 0;   // exact Jaccard similarity of document and matched
};

struct NearDedupStats {
  int64_t buckets = 0;          // runs of >= 2 documents sharing a band key, over all bands
  int64_t comparisons = 0;      // exact Jaccard computations
  int64_t edges = 0;            // comparisons at or above the threshold
};

struct NearDedupInput {
  int64_t documents = 0;
  int bands = 0;
  const uint64_t* band_keys = nullptr;      // documents x bands, row-major
  const std::vector<bool>* eligible = nullptr;  // documents with shingles (others are never duplicates)
  // Sorted unique shingle hashes of a document; called from several threads at once.
  std::function<std::vector<uint64_t>(int64_t)> shingles;
  double threshold = 0.7;
};

constexpr int kMaxRepresentatives = 8;

// The near duplicates in document order, each with its evidence.
std::vector<NearDuplicate> find_near_duplicates(const NearDedupInput& input, ThreadPool& pool,
                                                NearDedupStats* stats = nullptr);

}  // namespace granite
