#include "granite/tokenizer/bpe_merge.h"

#include <climits>
#include <queue>

namespace granite {

bool MergeTable::insert(MergeId left, MergeId right, int32_t rank, MergeId merged) {
  if ((size_ + 1) * 2 > slots_.size()) grow();  // load factor <= 1/2
  const uint64_t key = pair_key(left, right);
  size_t i = slot_of(key);
  for (; slots_[i].key != kEmpty; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return false;
  }
  slots_[i] = {key, rank, merged};
  ++size_;
  return true;
}

void MergeTable::grow() {
  std::vector<Entry> old;
  old.swap(slots_);
  const size_t capacity = old.empty() ? 64 : old.size() * 2;
  slots_.assign(capacity, Entry{});
  mask_ = capacity - 1;
  shift_ = 64 - __builtin_ctzll(capacity);
  for (const Entry& e : old) {
    if (e.key == kEmpty) continue;
    size_t i = slot_of(e.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = e;
  }
}

void merge_by_rescan(std::vector<MergeId>& symbols, const MergeTable& merges) {
  // ranks[i]: rank of the pair (symbols[i], symbols[i + 1]), INT_MAX if none. Each merge rescans these ints for the
  // lowest (the leftmost on ties) and looks up only the two pairs the merge changed.
  thread_local std::vector<int32_t> ranks;
  const auto rank_at = [&](size_t i) {
    const MergeTable::Entry* e = merges.find(symbols[i], symbols[i + 1]);
    return e ? e->rank : INT32_MAX;
  };
  if (symbols.size() < 2) return;
  ranks.resize(symbols.size() - 1);
  for (size_t i = 0; i + 1 < symbols.size(); ++i) ranks[i] = rank_at(i);
  while (!ranks.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < ranks.size(); ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == INT32_MAX) break;
    symbols[best] = merges.find(symbols[best], symbols[best + 1])->merged;
    symbols.erase(symbols.begin() + std::ptrdiff_t(best) + 1);
    ranks.erase(ranks.begin() + std::ptrdiff_t(best));
    if (best + 1 < symbols.size()) ranks[best] = rank_at(best);
    if (best > 0) ranks[best - 1] = rank_at(best - 1);
  }
}

void merge_by_heap(std::vector<MergeId>& symbols, const MergeTable& merges) {
  // Symbols stay at their original positions in a doubly linked list; a merge at position p absorbs its right
  // neighbour. Heap entries (rank, p) go stale when p or its neighbour changed; they are checked when popped.
  const int n = int(symbols.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    MergeId left, right, merged;  // the pair when pushed: a mismatch later means the entry is stale
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int p) {
    const int q = next[size_t(p)];
    if (q < 0) return;
    if (const MergeTable::Entry* e = merges.find(symbols[size_t(p)], symbols[size_t(q)]))
      heap.push({e->rank, p, symbols[size_t(p)], symbols[size_t(q)], e->merged});
  };
  std::vector<bool> alive(size_t(n), true);
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int p = c.pos;
    if (!alive[size_t(p)]) continue;
    const int q = next[size_t(p)];
    if (q < 0 || symbols[size_t(p)] != c.left || symbols[size_t(q)] != c.right) continue;
    symbols[size_t(p)] = c.merged;
    alive[size_t(q)] = false;
    next[size_t(p)] = next[size_t(q)];
    if (next[size_t(q)] >= 0) prev[size_t(next[size_t(q)])] = p;
    if (prev[size_t(p)] >= 0) push(prev[size_t(p)]);
    push(p);
  }
  size_t out = 0;
  for (int i = 0; i >= 0; i = next[size_t(i)]) symbols[out++] = symbols[size_t(i)];
  symbols.resize(out);
}

}  // namespace granite
