#pragma once
// One data source as an endless stream of tokens: the documents of its token shards (granite-data prepare output,
// Megatron .bin/.idx), epoch after epoch, each epoch in its own order (a permutation drawn from (seed, epoch), or
// the shards' order when shuffling is off). Documents already end with EOS (prepare appends it), so the stream is
// ready to be cut into packed sequences anywhere. Reading position p is a pure function of p: no cursor to keep.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "granite/data/indexed_dataset.h"

namespace granite {

class TokenStream {
 public:
  // `paths`: directories (every shard-*.idx inside, in name order) or shard prefixes (".../shard-00000").
  TokenStream(const std::vector<std::string>& paths, uint64_t seed, bool shuffle);

  int64_t documents() const { return int64_t(refs_.size()); }
  int64_t tokens_per_epoch() const { return tokens_per_epoch_; }
  // Appends tokens [position, position + count) of the stream (epochs concatenated) to `out`. Thread-safe.
  void read(int64_t position, int64_t count, std::vector<TokenId>& out) const;
  // Document of the stream at `position` (epoch-local order resolved): its global index (shards concatenated).
  int64_t document_at(int64_t position) const;

 private:
  struct DocRef {
    int32_t shard;
    int64_t index;
  };
  struct Epoch {
    int64_t number = -1;
    std::vector<int64_t> order;  // document index at each place of the epoch
    std::vector<int64_t> ends;   // cumulative token count after each place
  };
  std::shared_ptr<const Epoch> epoch(int64_t number) const;

  std::vector<std::shared_ptr<IndexedDataset>> shards_;
  std::vector<DocRef> refs_;
  std::vector<int64_t> lengths_;
  int64_t tokens_per_epoch_ = 0;
  uint64_t seed_;
  bool shuffle_;
  mutable std::mutex mutex_;
  mutable std::vector<std::shared_ptr<const Epoch>> cache_;  // the most recent epochs (at most 2)
};

// The shard prefixes a path names: a directory's shard-*.idx (name order), or the path itself as a prefix. Errors
// name the path when there is nothing to read.
std::vector<std::string> shard_prefixes(const std::string& path);

}  // namespace granite
