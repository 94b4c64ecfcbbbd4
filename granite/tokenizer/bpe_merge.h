#pragma once
// BPE merging of one pre-token: repeatedly merge the adjacent pair with the lowest rank, the leftmost first — the
// order HF tokenizers' Word::merge_all produces with its priority queue of (rank, position). Two equivalent
// algorithms: a rescan of cached pair ranks (fastest for the short pieces code is made of) and a heap over a linked
// list of symbols (n log n, for long pieces: a base64 blob or a minified line can be one piece of 100k bytes).
// A test pins them together on random merge tables.
#include <cstdint>
#include <vector>

namespace granite {

using MergeId = int32_t;

// (left, right) -> (rank, merged id), open addressing with linear probing: the merge lookup is the hot loop of BPE,
// and a node-based std::unordered_map with modulo-prime buckets was a tenth of tokenization time.
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    MergeId merged = 0;
  };
  // False (and no change) when the pair is already present: the first (lowest) rank wins, as in HF.
  bool insert(MergeId left, MergeId right, int32_t rank, MergeId merged);
  const Entry* find(MergeId left, MergeId right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pair_key(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // (-1, -1): ids are never negative
  static uint64_t pair_key(MergeId left, MergeId right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }
  size_t slot_of(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }
  void grow();

  std::vector<Entry> slots_;
  size_t mask_ = 0, size_ = 0;
  int shift_ = 64;
};

// Pieces at least this many symbols long go to merge_by_heap.
constexpr size_t kHeapMergeFrom = 64;

void merge_by_rescan(std::vector<MergeId>& symbols, const MergeTable& merges);
void merge_by_heap(std::vector<MergeId>& symbols, const MergeTable& merges);

inline void merge_symbols(std::vector<MergeId>& symbols, const MergeTable& merges) {
  if (symbols.size() >= kHeapMergeFrom) {
    merge_by_heap(symbols, merges);
  } else {
    merge_by_rescan(symbols, merges);
  }
}

}  // namespace granite
