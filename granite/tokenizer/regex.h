#pragma once
// A compiled Unicode regular expression (PCRE2 with UTF + UCP, JIT-compiled): \p{L}, \p{N}, \s, lookahead and
// (?i:...) as the pre-tokenizer patterns of GPT-2 / StarCoder / Llama-3 / Qwen-3 use them. HF tokenizers runs the
// same patterns on Oniguruma; the parity tests pin the two together on real text.
// Thread-safe: the compiled pattern is shared, match state is per thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace granite {

class Regex {
 public:
  // `where` names the source in errors (e.g. "tokenizer.json: pre_tokenizer Split").
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [begin, end) byte spans of all non-overlapping, non-empty matches in `text` (valid UTF-8).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& spans) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Escapes a literal for use as a pattern.
std::string regex_escape(std::string_view literal);

}  // namespace granite
