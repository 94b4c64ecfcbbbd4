// The tokenizer's fast paths against the general algorithms they replace: the hand-written GPT-2 pre-tokenizer
// scanner against the PCRE2 regex (the path the HF parity tests pinned), and the heap BPE merge against the rescan
// merge. Random inputs are drawn from the characters where the two could disagree: every class boundary of the
// pattern (letters, numbers, spaces, others, in ASCII, BMP and astral planes), contractions, and runs.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "granite/core/list_directory.h"
#include "granite/tokenizer/bpe_merge.h"
#include "granite/tokenizer/gpt2_split.h"
#include "granite/tokenizer/pre_tokenizer.h"
#include "granite/tokenizer/regex.h"
#include "granite/tokenizer/unicode.h"
#include "support/paths.h"

namespace {

std::vector<std::string_view> regex_pieces(const granite::Regex& regex, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> spans;
  regex.find_all(text, spans);
  std::vector<std::string_view> out;
  size_t last = 0;
  for (auto [b, e] : spans) {  // the pattern covers every character: no gaps, but keep them to see one
    if (b > last) out.push_back(text.substr(last, b - last));
    out.push_back(text.substr(b, e - b));
    last = e;
  }
  if (last < text.size()) out.push_back(text.substr(last));
  return out;
}

std::vector<std::string_view> fast_pieces(std::string_view text) {
  std::vector<std::string_view> out;
  granite::split_gpt2(text, out);
  return out;
}

std::string show(const std::vector<std::string_view>& pieces) {
  std::ostringstream s;
  for (auto p : pieces) s << '[' << p << ']';
  return s.str();
}

// Characters from every class of the pattern, at 1 to 4 UTF-8 bytes each.
const std::vector<std::string>& alphabet() {
  static const std::vector<std::string> chars = {
      "a", "Z", "s", "t", "r", "e", "v", "l", "m", "d", "'", "'", "0", "7", " ", " ", " ", "\t", "\n", "\r", "\v",
      "\f", "_", "(", ")", "=", ".", "\"", "#", "\x01", "\x7f", "é", "ß", "Ω", "ж", "中", "ア", "ㄱ", "\u0301",
      "\u0300", "٣", "߂", "Ⅻ", "½", "²", "\u00a0", "\u0085", "\u1680", "\u180e", "\u2000", "\u200a", "\u200b",
      "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "€", "—", "…", "\U0001F600", "\U0001D49C",
      "\U00010330", "\U0001D7D8", "\U000E0041", "\U0010FFFD"};
  return chars;
}

}  // namespace

TEST_CASE("the GPT-2 scanner splits exactly as the regex on pinned cases", "[tokenizer][pretokenizer]") {
  const granite::Regex regex(granite::kGpt2SplitPattern, "test");
  const std::vector<std::string> cases = {
      "", " ", "  ", "a", " a", "  a", "a ", "a  ", "\n", "\n\n", " \n a", "\t\tx", "it's", "we'll", "they're",
      "I've", "'s", "''s", "x'S", "' s", " 's", "='s'", "a1b2", " 123", "x  =  1", "foo(bar)\n    return 0\n",
      "\u3000x", " \u3000x", "\u00a0\u00a0y", "é́", "a\u0301b", "😀😀 😀", "\u180ez", "x\u2028\u2028y", "end  "};
  for (const auto& text : cases) {
    INFO("text: [" << text << "]");
    CHECK(show(fast_pieces(text)) == show(regex_pieces(regex, text)));
  }
}

TEST_CASE("the GPT-2 scanner splits exactly as the regex on random Unicode", "[tokenizer][pretokenizer]") {
  const granite::Regex regex(granite::kGpt2SplitPattern, "test");
  std::mt19937 rng(1234);
  const auto& chars = alphabet();
  std::uniform_int_distribution<size_t> pick(0, chars.size() - 1), length(0, 40);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string text;
    for (size_t n = length(rng); n > 0; --n) text += chars[pick(rng)];
    INFO("trial " << trial << " text: [" << text << "]");
    REQUIRE(show(fast_pieces(text)) == show(regex_pieces(regex, text)));
  }
}

TEST_CASE("the GPT-2 scanner splits exactly as the regex on real code", "[tokenizer][pretokenizer]") {
  const granite::Regex regex(granite::kGpt2SplitPattern, "test");
  int files = 0;
  for (const std::string dir : {"granite/tokenizer", "granite/data", "tests/tokenizer", "configs/data"}) {
    for (const auto& name : granite::list_directory(granite::test::source_path(dir))) {
      std::ifstream in(granite::test::source_path(dir + "/" + name), std::ios::binary);
      std::stringstream s;
      s << in.rdbuf();
      const std::string text = s.str();
      if (granite::first_invalid_utf8(text) != std::string::npos) continue;
      INFO(dir << "/" << name);
      REQUIRE(show(fast_pieces(text)) == show(regex_pieces(regex, text)));
      ++files;
    }
  }
  CHECK(files > 20);
}

TEST_CASE("pre-tokenizers built from tokenizer.json use the scanner with the same pieces", "[tokenizer][pretokenizer]") {
  // StarCoder's Sequence [Digits individual, ByteLevel]: the scanner runs on each piece Digits leaves.
  const auto spec = granite::Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})");
  const granite::PreTokenizer starcoder(spec, "test");
  // The same pattern given as a Split regex which is not GPT-2's string goes to PCRE2: a reference built from
  // the pattern with a no-op group, which the fast path does not recognise.
  const auto slow_spec = granite::Json::parse(std::string(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "Split", "behavior": "Isolated", "pattern": {"Regex": )") +
                                              granite::Json(std::string("(?:)") + granite::kGpt2SplitPattern).dump() +
                                              "}}]}");
  const granite::PreTokenizer slow(slow_spec, "test");
  std::mt19937 rng(99);
  const auto& chars = alphabet();
  std::uniform_int_distribution<size_t> pick(0, chars.size() - 1), length(0, 30);
  std::vector<std::string_view> a, b;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string text;
    for (size_t n = length(rng); n > 0; --n) text += chars[pick(rng)];
    starcoder.split(text, a);
    slow.split(text, b);
    INFO("text: [" << text << "]");
    REQUIRE(show(a) == show(b));
  }
}

TEST_CASE("heap BPE merge equals rescan merge on random merge tables", "[tokenizer][bpe]") {
  std::mt19937 rng(7);
  for (int table = 0; table < 50; ++table) {
    // Symbols 0..7 are bytes; each merge makes a new id from two existing ones, ranks in creation order.
    const int bytes = 2 + table % 6;
    granite::MergeTable merges;
    int next_id = bytes;
    for (int rank = 0; rank < 60; ++rank) {
      std::uniform_int_distribution<int> any(0, next_id - 1);
      const int left = any(rng), right = any(rng);
      if (merges.insert(left, right, rank, next_id)) ++next_id;
    }
    std::uniform_int_distribution<int> byte(0, bytes - 1), length(0, 300);
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<granite::MergeId> symbols(size_t(length(rng)));
      for (auto& s : symbols) s = byte(rng);
      auto by_rescan = symbols, by_heap = symbols;
      granite::merge_by_rescan(by_rescan, merges);
      granite::merge_by_heap(by_heap, merges);
      INFO("table " << table << " trial " << trial << " length " << symbols.size());
      REQUIRE(by_heap == by_rescan);
    }
  }
}
