// Fill-in-the-middle (granite/data/fim.h) on real code with the StarCoder tokenizer: the PSM and SPM layouts token
// for token, reassembly of every permuted document from its own pieces only (no cross-document leakage), rates 0
// and 1, measured FIM/SPM rates, determinism, length restoration, and the segments that must stay unchanged.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "granite/data/fim.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/tokenizer/unicode.h"
#include "support/real_code.h"

using granite::FimConfig;
using granite::FimLayout;
using granite::FimStats;
using granite::FimTokens;
using granite::Objective;
using granite::Rng;
using granite::TokenId;

namespace {

const granite::Tokenizer& starcoder() { return granite::test::starcoder_tokenizer(); }
const std::vector<std::string>& real_code() { return granite::test::cpython_files(); }

std::vector<TokenId> encode(std::string_view text) {
  granite::EncodeOptions plain;
  plain.parse_added_tokens = false;
  return starcoder().encode(text, plain);
}

std::vector<TokenId> concat(std::initializer_list<std::vector<TokenId>> parts) {
  std::vector<TokenId> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Undoes one permuted segment: the text of its prefix, middle and suffix joined in reading order.
std::string reassemble(const std::vector<TokenId>& segment, const FimTokens& t) {
  REQUIRE(segment.size() >= 3);
  REQUIRE(segment[0] == t.prefix);
  const auto& tok = starcoder();
  auto find = [&](TokenId id, size_t from) {
    for (size_t i = from; i < segment.size(); ++i)
      if (segment[i] == id) return i;
    FAIL("sentinel " << id << " missing");
    return size_t(0);
  };
  auto text = [&](size_t b, size_t e) {
    return tok.decode_bytes(std::vector<TokenId>(segment.begin() + std::ptrdiff_t(b), segment.begin() + std::ptrdiff_t(e)));
  };
  if (segment[1] == t.suffix) {  // SPM: <pre> <suf> suffix <mid> prefix middle
    const size_t mid = find(t.middle, 2);
    return text(mid + 1, segment.size()) + text(2, mid);
  }
  const size_t suf = find(t.suffix, 1), mid = find(t.middle, suf + 1);  // PSM
  return text(1, suf) + text(mid + 1, segment.size()) + text(suf + 1, mid);
}

}  // namespace

TEST_CASE("FIM special ids come from the tokenizer", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  CHECK(t.prefix == *starcoder().token_to_id("<fim_prefix>"));
  CHECK(t.middle == *starcoder().token_to_id("<fim_middle>"));
  CHECK(t.suffix == *starcoder().token_to_id("<fim_suffix>"));
  CHECK(t.pad == *starcoder().token_to_id("<fim_pad>"));
  CHECK(t.eod == *starcoder().token_to_id("<|endoftext|>"));
}

TEST_CASE("PSM and SPM layouts are token-exact on real code", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  Rng rng(7);
  int checked = 0;
  for (size_t f = 0; f < real_code().size(); f += 9) {
    const std::string& text = real_code()[f].substr(0, 3000);
    if (granite::first_invalid_utf8(text) != std::string::npos) continue;  // cut inside a character
    // Cuts at code point boundaries, including the empty prefix / middle / suffix cases.
    std::vector<size_t> starts;
    for (size_t i = 0; i <= text.size(); ++i)
      if (i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
    for (auto [a, b] : std::vector<std::pair<size_t, size_t>>{
             {0, 0}, {0, starts.size() - 1}, {starts.size() - 1, starts.size() - 1},
             {size_t(rng.uniform_int(starts.size())), size_t(rng.uniform_int(starts.size()))}}) {
      if (a > b) std::swap(a, b);
      const size_t mb = starts[a], me = starts[b];
      const auto prefix = encode(std::string_view(text).substr(0, mb));
      const auto middle = encode(std::string_view(text).substr(mb, me - mb));
      const auto suffix = encode(std::string_view(text).substr(me));
      INFO("file " << f << " cut [" << mb << ", " << me << ")");
      CHECK(granite::fim_permute(text, mb, me, FimLayout::kPsm, t, starcoder()) ==
            concat({{t.prefix}, prefix, {t.suffix}, suffix, {t.middle}, middle}));
      CHECK(granite::fim_permute(text, mb, me, FimLayout::kSpm, t, starcoder()) ==
            concat({{t.prefix, t.suffix}, suffix, {t.middle}, prefix, middle}));
      ++checked;
    }
  }
  CHECK(checked > 40);
  // Text that mentions the sentinels stays text.
  const std::string tricky = "s = '<fim_prefix>'\nt = '<|endoftext|>'\n";
  const auto out = granite::fim_permute(tricky, 4, 10, FimLayout::kPsm, t, starcoder());
  CHECK(std::count(out.begin(), out.end(), t.prefix) == 1);
  CHECK(std::count(out.begin(), out.end(), t.eod) == 0);
  CHECK_THROWS(granite::fim_permute("é", 1, 2, FimLayout::kPsm, t, starcoder()));  // inside a character
}

TEST_CASE("FIM permutes each document of a packed sample on its own", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  FimConfig always{1.0, 0.5};
  FimStats stats;
  int samples = 0, documents = 0;
  for (size_t f = 0; f + 3 < real_code().size() && samples < 40; f += 5, ++samples) {
    // Three whole documents, EOD after each: what a packed sequence holds.
    std::vector<std::string> texts;
    std::vector<TokenId> sample;
    for (size_t k = 0; k < 3; ++k) {
      texts.push_back(real_code()[f + k].substr(0, 1500));
      if (granite::first_invalid_utf8(texts.back()) != std::string::npos) texts.back() = "x = 1\n";
      const auto ids = encode(texts.back());
      sample.insert(sample.end(), ids.begin(), ids.end());
      sample.push_back(t.eod);
    }
    const size_t length = sample.size();
    std::vector<Objective> objectives;
    Rng rng = Rng::derive(1, 2, f);
    std::vector<TokenId> tokens = sample;
    granite::apply_fim(tokens, objectives, always, t, starcoder(), rng, &stats);
    REQUIRE(tokens.size() == length);
    REQUIRE(objectives.size() == length);
    // Undo: the segments between EODs, each reassembled from its own pieces, give back exactly its document.
    size_t start = 0, doc = 0;
    for (size_t i = 0; i < tokens.size() && doc < 3; ++i) {
      if (tokens[i] != t.eod) continue;
      const std::vector<TokenId> segment(tokens.begin() + std::ptrdiff_t(start), tokens.begin() + std::ptrdiff_t(i));
      CHECK(reassemble(segment, t) == texts[doc]);
      for (size_t k = start; k <= i; ++k) CHECK(objectives[k] == Objective::kFim);  // the EOD too
      ++doc;
      ++documents;
      start = i + 1;
    }
    // Whatever remains is the truncated end of the last document or <fim_pad> (ignored).
    for (size_t k = start; k < tokens.size(); ++k)
      if (tokens[k] == t.pad) CHECK(objectives[k] == Objective::kIgnore);
  }
  CHECK(documents > 60);
  CHECK(stats.psm + stats.spm + stats.unchanged_lossy == stats.segments);
  CHECK(stats.psm > 0);
  CHECK(stats.spm > 0);
}

TEST_CASE("fim_rate 0 leaves samples unchanged, fim_rate 1 permutes every segment", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  std::vector<TokenId> sample = concat({encode(real_code()[0].substr(0, 800)), {t.eod}, encode(real_code()[1].substr(0, 800))});
  std::vector<Objective> objectives;
  Rng rng(3);
  std::vector<TokenId> tokens = sample;
  FimStats never_stats;
  granite::apply_fim(tokens, objectives, FimConfig{0.0, 0.5}, t, starcoder(), rng, &never_stats);
  CHECK(tokens == sample);
  CHECK(std::all_of(objectives.begin(), objectives.end(), [](Objective o) { return o == Objective::kClm; }));
  CHECK(never_stats.segments == 2);
  CHECK(never_stats.psm + never_stats.spm == 0);

  FimStats always_stats;
  for (int k = 0; k < 20; ++k) {
    tokens = sample;
    granite::apply_fim(tokens, objectives, FimConfig{1.0, 0.0}, t, starcoder(), rng, &always_stats);
    CHECK(tokens[0] == t.prefix);
    CHECK(tokens[1] != t.suffix);  // spm_rate 0: always PSM
  }
  CHECK(always_stats.psm == 40);
  CHECK(always_stats.spm == 0);
}

TEST_CASE("measured FIM and SPM rates match the configured ones", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  const FimConfig config{0.3, 0.7};
  FimStats stats;
  std::vector<Objective> objectives;
  // 3000 small segments from real code, one sample each.
  int n = 0;
  for (size_t f = 0; n < 3000; f = (f + 1) % real_code().size()) {
    const std::string& file = real_code()[f];
    const size_t at = file.size() > 200 ? (size_t(n) * 7919) % (file.size() - 200) : 0;
    std::string piece = file.substr(at, 120);
    while (!piece.empty() && granite::first_invalid_utf8(piece) != std::string::npos) piece.pop_back();
    if (piece.empty()) continue;
    std::vector<TokenId> tokens = encode(piece);
    Rng rng = Rng::derive(99, 0, uint64_t(n));
    granite::apply_fim(tokens, objectives, config, t, starcoder(), rng, &stats);
    ++n;
  }
  const double segments = double(stats.segments);
  const double fim = double(stats.psm + stats.spm), spm = double(stats.spm);
  // Binomial: 4 standard deviations.
  CHECK(std::abs(fim / segments - 0.3) < 4 * std::sqrt(0.3 * 0.7 / segments));
  CHECK(std::abs(spm / fim - 0.7) < 4 * std::sqrt(0.7 * 0.3 / fim));
  CHECK(stats.unchanged_lossy == 0);
}

TEST_CASE("FIM is a pure function of the generator", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  const std::vector<TokenId> sample = concat({encode(real_code()[2].substr(0, 2000)), {t.eod}, encode(real_code()[3].substr(0, 2000))});
  std::vector<Objective> oa, ob;
  int differ = 0;
  for (uint64_t g = 0; g < 20; ++g) {
    std::vector<TokenId> a = sample, b = sample, c = sample;
    Rng ra = Rng::derive(5, 1, g), rb = Rng::derive(5, 1, g), rc = Rng::derive(5, 1, g + 1000);
    granite::apply_fim(a, oa, FimConfig{}, t, starcoder(), ra);
    granite::apply_fim(b, ob, FimConfig{}, t, starcoder(), rb);
    CHECK(a == b);
    CHECK(oa == ob);
    granite::apply_fim(c, ob, FimConfig{}, t, starcoder(), rc);
    differ += a != c;
  }
  CHECK(differ > 10);
}

TEST_CASE("segments FIM cannot cut as text stay unchanged and are counted", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  // A 4-byte character whose tokens start mid-character once the first token is dropped (packing can cut there).
  const std::vector<TokenId> astral = encode("\U0001D49C\U0001D49C\U0001D49C");
  REQUIRE(astral.size() >= 2);
  std::vector<TokenId> broken(astral.begin() + 1, astral.end());
  REQUIRE(granite::first_invalid_utf8(starcoder().decode_bytes(broken)) != std::string::npos);
  const std::vector<TokenId> tail = encode(" = 1\n");
  broken.insert(broken.end(), tail.begin(), tail.end());
  // And a segment holding a special token.
  const std::vector<TokenId> special = concat({encode("a = 1\n"), {*starcoder().token_to_id("<filename>")}, encode("b")});
  for (const auto& segment : {broken, special}) {
    std::vector<TokenId> tokens = segment;
    std::vector<Objective> objectives;
    FimStats stats;
    Rng rng(1);
    granite::apply_fim(tokens, objectives, FimConfig{1.0, 0.5}, t, starcoder(), rng, &stats);
    CHECK(tokens == segment);
    CHECK(stats.unchanged_lossy == 1);
    CHECK(std::all_of(objectives.begin(), objectives.end(), [](Objective o) { return o == Objective::kClm; }));
  }
}

TEST_CASE("FIM keeps the sample length: truncates the end or pads with <fim_pad>", "[data][fim]") {
  const FimTokens t = FimTokens::from(starcoder());
  FimStats stats;
  for (uint64_t g = 0; g < 200; ++g) {
    std::vector<TokenId> tokens = encode(real_code()[g % real_code().size()].substr(0, 300));
    const size_t length = tokens.size();
    std::vector<Objective> objectives;
    Rng rng = Rng::derive(11, 0, g);
    granite::apply_fim(tokens, objectives, FimConfig{1.0, 0.5}, t, starcoder(), rng, &stats);
    REQUIRE(tokens.size() == length);
    for (size_t i = 0; i < length; ++i) CHECK((objectives[i] == Objective::kIgnore) == (tokens[i] == t.pad));
  }
  CHECK(stats.truncated > 0);  // three sentinels are added: most samples get longer
  CHECK(stats.truncated + stats.padded > 0);
}
