#pragma once
// A hand-written scanner equivalent to GPT-2's pre-tokenizer regex (HF ByteLevel with use_regex, and StarCoder /
// Granite after their Digits step):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// It produces exactly the pieces the regex engine does (a differential test pins the two together on random
// Unicode and real code) at several times the speed: it is the inner loop of tokenization, which is the heaviest
// step of data preparation. Code point classes (letter, number, space) come from PCRE2 itself, the engine the
// tokenizer parity tests pinned against HF, so the two agree on every code point whatever the Unicode version.
#include <string_view>
#include <vector>

namespace granite {

// Appends the pieces of `text` (valid UTF-8) to `out` as views into `text`.
void split_gpt2(std::string_view text, std::vector<std::string_view>& out);

}  // namespace granite
