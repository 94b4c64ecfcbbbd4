#include "granite/tokenizer/gpt2_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "granite/core/check.h"
#include "granite/tokenizer/unicode.h"

namespace granite {

namespace {

// What the regex distinguishes: \p{L}, \p{N}, \s, and everything else.
enum CharClass : uint8_t { kOther = 1, kLetter = 2, kNumber = 3, kSpace = 4 };

// PCRE2 classifies a code point the way the regex path would (UTF + UCP, as granite::Regex compiles patterns).
class Pcre2Classifier {
 public:
  Pcre2Classifier() {
    int error = 0;
    PCRE2_SIZE offset = 0;
    const char* pattern = R"((\p{L})|(\p{N})|(\s))";
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
    GRANITE_CHECK(code_ != nullptr, "cannot compile the character-class pattern (PCRE2 error ", error, ")");
  }
  ~Pcre2Classifier() { pcre2_code_free(code_); }

  CharClass classify(char32_t cp) const {
    char buf[4];
    const size_t n = encode(cp, buf);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(buf), n, 0, 0, md, nullptr);
    CharClass c = kOther;
    if (rc > 1) c = rc == 2 ? kLetter : rc == 3 ? kNumber : kSpace;  // rc - 1 = the highest group that matched
    pcre2_match_data_free(md);
    return c;
  }

 private:
  static size_t encode(char32_t cp, char* out) {
    if (cp < 0x80) {
      out[0] = char(cp);
      return 1;
    }
    if (cp < 0x800) {
      out[0] = char(0xC0 | (cp >> 6));
      out[1] = char(0x80 | (cp & 0x3F));
      return 2;
    }
    if (cp < 0x10000) {
      out[0] = char(0xE0 | (cp >> 12));
      out[1] = char(0x80 | ((cp >> 6) & 0x3F));
      out[2] = char(0x80 | (cp & 0x3F));
      return 3;
    }
    out[0] = char(0xF0 | (cp >> 18));
    out[1] = char(0x80 | ((cp >> 12) & 0x3F));
    out[2] = char(0x80 | ((cp >> 6) & 0x3F));
    out[3] = char(0x80 | (cp & 0x3F));
    return 4;
  }

  pcre2_code* code_ = nullptr;
};

// Classes of all code points, filled on first sight (0 = not yet known). Lock-free after the first fill of an
// entry: concurrent threads may both classify a code point, but they store the same value.
class ClassTable {
 public:
  ClassTable() : table_(new std::atomic<uint8_t>[0x110000]) {
    for (size_t i = 0; i < 0x110000; ++i) table_[i].store(0, std::memory_order_relaxed);
    for (char32_t cp = 0; cp < 0x80; ++cp) ascii_[cp] = classifier_.classify(cp);
  }
  CharClass ascii(unsigned char c) const { return ascii_[c]; }
  CharClass of(char32_t cp) const {
    if (cp < 0x80) return ascii_[cp];
    uint8_t c = table_[cp].load(std::memory_order_relaxed);
    if (c == 0) {
      c = classifier_.classify(cp);
      table_[cp].store(c, std::memory_order_relaxed);
    }
    return CharClass(c);
  }

 private:
  Pcre2Classifier classifier_;
  CharClass ascii_[128];
  std::unique_ptr<std::atomic<uint8_t>[]> table_;
};

const ClassTable& classes() {
  static const ClassTable table;
  return table;
}

// The class of the code point at text[i] and its byte length.
inline CharClass class_at(const ClassTable& t, std::string_view text, size_t i, size_t* length) {
  const unsigned char b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    *length = 1;
    return t.ascii(b);
  }
  int32_t cp = 0;
  *length = size_t(utf8_next(text, i, &cp));
  return t.of(char32_t(cp));
}

// End of the run of code points of class `c` starting at text[i].
inline size_t run_end(const ClassTable& t, std::string_view text, size_t i, CharClass c) {
  while (i < text.size()) {
    size_t n;
    if (class_at(t, text, i, &n) != c) break;
    i += n;
  }
  return i;
}

// End of the run of code points that are none of \s, \p{L}, \p{N} starting at text[i].
inline size_t other_run_end(const ClassTable& t, std::string_view text, size_t i) { return run_end(t, text, i, kOther); }

// 's 't 're 've 'm 'll 'd at text[i] (which is '\''): the contraction's length, or 0.
inline size_t contraction_length(std::string_view text, size_t i) {
  if (i + 1 >= text.size()) return 0;
  const char a = text[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char b = text[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace

void split_gpt2(std::string_view text, std::vector<std::string_view>& out) {
  const ClassTable& t = classes();
  size_t i = 0;
  while (i < text.size()) {
    // The alternatives in the regex's order; the first that matches at i wins.
    if (text[i] == '\'') {
      if (size_t n = contraction_length(text, i)) {
        out.push_back(text.substr(i, n));
        i += n;
        continue;
      }
    }
    size_t n = 0;
    CharClass c = class_at(t, text, i, &n);
    size_t start = i;
    if (text[i] == ' ' && i + 1 < text.size()) {  // " ?" before a letter, number or other run
      size_t m = 0;
      const CharClass next = class_at(t, text, i + 1, &m);
      if (next != kSpace) {
        c = next;
        n = 1 + m;
      }
    }
    if (c != kSpace) {  // ( ?)\p{L}+ | ( ?)\p{N}+ | ( ?)[^\s\p{L}\p{N}]+
      const size_t end = run_end(t, text, start + n, c);
      out.push_back(text.substr(start, end - start));
      i = end;
      continue;
    }
    // \s+(?!\S) | \s+ : a whitespace run followed by a non-space gives that code point back to the next piece
    // (so " foo" stays together), unless the run is a single code point.
    size_t last = i;  // start of the run's last code point
    size_t end = i;
    while (end < text.size()) {
      size_t m;
      if (class_at(t, text, end, &m) != kSpace) break;
      last = end;
      end += m;
    }
    if (end < text.size() && last > i) end = last;
    out.push_back(text.substr(i, end - i));
    i = end;
  }
}

}  // namespace granite
