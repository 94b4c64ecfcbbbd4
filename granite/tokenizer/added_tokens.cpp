#include "granite/tokenizer/added_tokens.h"

#include <algorithm>

#include "granite/core/check.h"

namespace granite {

void AddedTokenMatcher::add(const std::string& content, TokenId id) {
  GRANITE_CHECK(!content.empty(), "added token ", id, " has empty content");
  tokens_.push_back({content, id});
  for (auto& list : by_first_) list.clear();
  std::vector<size_t> order(tokens_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
  for (size_t i : order) by_first_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t plain_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto& candidates = by_first_[static_cast<unsigned char>(text[i])];
    const Entry* hit = nullptr;
    for (size_t k : candidates) {  // longest first: the first that matches is the longest at i
      const auto& c = tokens_[k].content;
      if (text.compare(i, c.size(), c) == 0) {
        hit = &tokens_[k];
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > plain_start) out.push_back({text.substr(plain_start, i - plain_start), -1});
    out.push_back({{}, hit->id});
    i += hit->content.size();
    plain_start = i;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace granite
