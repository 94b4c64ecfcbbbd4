#pragma once
// HF tokenizers' pre-tokenizers for byte-level BPE, parsed from tokenizer.json "pre_tokenizer":
//   Digits {individual_digits}      every numeric char (or run of them) becomes its own piece
//   ByteLevel {add_prefix_space, use_regex}   optional leading space, then (use_regex) the GPT-2 split
//   Split {pattern: {Regex|String}, behavior: Isolated|Removed, invert: false}
//   Sequence {pretokenizers: [...]}  each step applied to every piece the previous one produced
// The byte-to-unicode mapping of ByteLevel is done by the BPE model (on bytes), not here.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granite/core/json.h"
#include "granite/tokenizer/regex.h"

namespace granite {

// GPT-2's pattern (HF ByteLevel, use_regex = true).
extern const char* const kGpt2SplitPattern;

class PreTokenizer {
 public:
  // null (no pre-tokenization) or the JSON object above; `where` names tokenizer.json in errors.
  PreTokenizer(const Json& spec, const std::string& where);
  ~PreTokenizer();
  // Splits `text` into pieces (views into `text`).
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  struct Step;

 private:
  std::vector<std::unique_ptr<Step>> steps_;
};

}  // namespace granite
