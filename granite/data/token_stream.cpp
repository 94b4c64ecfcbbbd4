#include "granite/data/token_stream.h"

#include <algorithm>

#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/list_directory.h"
#include "granite/core/rng.h"
#include "granite/core/strings.h"

namespace granite {

std::vector<std::string> shard_prefixes(const std::string& path) {
  std::vector<std::string> prefixes;
  if (is_directory(path)) {
    for (const std::string& name : list_directory(path)) {
      if (starts_with(name, "shard-") && ends_with(name, ".idx"))
        prefixes.push_back(path + "/" + name.substr(0, name.size() - 4));
    }
    GRANITE_CHECK(!prefixes.empty(), path, ": no token shards (shard-*.idx) in this directory; prepare it with "
                  "granite-data prepare");
  } else {
    std::string prefix = path;
    for (const char* ext : {".idx", ".bin"})
      if (ends_with(prefix, ext)) prefix.resize(prefix.size() - 4);
    prefixes.push_back(prefix);
  }
  return prefixes;
}

TokenStream::TokenStream(const std::vector<std::string>& paths, uint64_t seed, bool shuffle)
    : seed_(seed), shuffle_(shuffle) {
  GRANITE_CHECK(!paths.empty(), "a data source needs at least one path");
  for (const std::string& path : paths) {
    for (const std::string& prefix : shard_prefixes(path)) {
      shards_.push_back(IndexedDataset::open(prefix));
      const IndexedDataset& shard = *shards_.back();
      for (int64_t i = 0; i < shard.size(); ++i) {
        refs_.push_back({int32_t(shards_.size() - 1), i});
        lengths_.push_back(shard.length(i));
        tokens_per_epoch_ += shard.length(i);
      }
    }
  }
  GRANITE_CHECK(tokens_per_epoch_ > 0, "data source ", paths.front(), (paths.size() > 1 ? " (and others)" : ""),
                " holds no tokens");
}

std::shared_ptr<const TokenStream::Epoch> TokenStream::epoch(int64_t number) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& e : cache_)
    if (e->number == number) return e;
  auto e = std::make_shared<Epoch>();
  e->number = number;
  e->order.resize(refs_.size());
  for (size_t i = 0; i < e->order.size(); ++i) e->order[i] = int64_t(i);
  if (shuffle_) {  // Fisher-Yates with a generator of its own per epoch
    Rng rng = Rng::derive(seed_, 0x5348554646ull /* "SHUFF" */, uint64_t(number));
    for (size_t i = e->order.size(); i > 1; --i) std::swap(e->order[i - 1], e->order[size_t(rng.uniform_int(i))]);
  }
  e->ends.resize(refs_.size());
  int64_t total = 0;
  for (size_t i = 0; i < e->order.size(); ++i) e->ends[i] = total += lengths_[size_t(e->order[i])];
  if (cache_.size() >= 2) cache_.erase(cache_.begin());
  cache_.push_back(e);
  return e;
}

void TokenStream::read(int64_t position, int64_t count, std::vector<TokenId>& out) const {
  GRANITE_CHECK(position >= 0 && count >= 0, "stream read at ", position, " of ", count, " tokens");
  while (count > 0) {
    const int64_t number = position / tokens_per_epoch_;
    int64_t offset = position % tokens_per_epoch_;
    const auto e = epoch(number);
    // The place whose document holds `offset`: the first whose end is past it.
    size_t place = size_t(std::upper_bound(e->ends.begin(), e->ends.end(), offset) - e->ends.begin());
    while (count > 0 && place < e->order.size()) {
      const int64_t begin = place == 0 ? 0 : e->ends[place - 1];
      const DocRef& ref = refs_[size_t(e->order[place])];
      const int64_t take = std::min(count, e->ends[place] - offset);
      shards_[size_t(ref.shard)]->append(ref.index, offset - begin, take, out);
      offset += take;
      position += take;
      count -= take;
      ++place;
    }
  }
}

int64_t TokenStream::document_at(int64_t position) const {
  const auto e = epoch(position / tokens_per_epoch_);
  const int64_t offset = position % tokens_per_epoch_;
  const size_t place = size_t(std::upper_bound(e->ends.begin(), e->ends.end(), offset) - e->ends.begin());
  return e->order[place];
}

}  // namespace granite
