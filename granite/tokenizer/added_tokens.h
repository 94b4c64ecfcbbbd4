#pragma once
// Added tokens (tokenizer.json "added_tokens": specials such as <|endoftext|>, <fim_prefix>) are found in the raw
// text before normalization and pre-tokenization, leftmost-longest, as HF's AddedVocabulary does (aho-corasick,
// MatchKind::LeftmostLongest). The text between them goes through the normal pipeline.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "granite/tokenizer/tokenizer.h"

namespace granite {

class AddedTokenMatcher {
 public:
  struct Segment {
    std::string_view text;  // plain text (when id < 0)
    TokenId id = -1;        // an added token
  };
  void add(const std::string& content, TokenId id);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into plain segments and added-token ids, in order.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Entry {
    std::string content;
    TokenId id;
  };
  std::vector<Entry> tokens_;                        // longest first
  std::array<std::vector<size_t>, 256> by_first_;   // first byte -> entries, longest first
};

}  // namespace granite
