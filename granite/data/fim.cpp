#include "granite/data/fim.h"

#include <algorithm>

#include "granite/core/check.h"
#include "granite/tokenizer/unicode.h"

namespace granite {

namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Byte offsets of the code point boundaries 0..n of valid UTF-8 `text`: entry k is where code point k starts
// (entry n is text.size()).
std::vector<size_t> code_point_offsets(const std::string& text) {
  std::vector<size_t> offsets;
  offsets.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i)
    if (!is_continuation(text[i])) offsets.push_back(i);
  offsets.push_back(text.size());
  return offsets;
}

void append(std::vector<TokenId>& out, const std::vector<TokenId>& ids) { out.insert(out.end(), ids.begin(), ids.end()); }

}  // namespace

FimTokens FimTokens::from(const Tokenizer& tokenizer) {
  const SpecialTokens& s = tokenizer.special_tokens();
  auto need = [](const std::optional<TokenId>& id, const char* name) {
    GRANITE_CHECK(id.has_value(), "FIM needs the ", name,
                  " token, which the tokenizer does not have (set fim_rate 0 to train without FIM)");
    return *id;
  };
  FimTokens t;
  t.prefix = need(s.fim_prefix, "<fim_prefix>");
  t.middle = need(s.fim_middle, "<fim_middle>");
  t.suffix = need(s.fim_suffix, "<fim_suffix>");
  t.pad = need(s.fim_pad, "<fim_pad>");
  t.eod = need(s.eos, "end-of-document (EOS)");
  return t;
}

FimStats& FimStats::operator+=(const FimStats& o) {
  segments += o.segments, psm += o.psm, spm += o.spm, unchanged_lossy += o.unchanged_lossy;
  truncated += o.truncated, padded += o.padded;
  return *this;
}

std::vector<TokenId> fim_permute(const std::string& text, size_t middle_begin, size_t middle_end, FimLayout layout,
                                 const FimTokens& tokens, const Tokenizer& tokenizer) {
  GRANITE_CHECK(middle_begin <= middle_end && middle_end <= text.size(), "FIM cut [", middle_begin, ", ", middle_end,
                ") outside a text of ", text.size(), " bytes");
  GRANITE_CHECK((middle_begin == text.size() || !is_continuation(text[middle_begin])) &&
                    (middle_end == text.size() || !is_continuation(text[middle_end])),
                "FIM cut [", middle_begin, ", ", middle_end, ") is inside a UTF-8 character");
  EncodeOptions plain;
  plain.parse_added_tokens = false;  // text that mentions "<fim_prefix>" is text
  const std::string_view all(text);
  const std::vector<TokenId> prefix = tokenizer.encode(all.substr(0, middle_begin), plain);
  const std::vector<TokenId> middle = tokenizer.encode(all.substr(middle_begin, middle_end - middle_begin), plain);
  const std::vector<TokenId> suffix = tokenizer.encode(all.substr(middle_end), plain);
  std::vector<TokenId> out;
  out.reserve(prefix.size() + middle.size() + suffix.size() + 3);
  if (layout == FimLayout::kPsm) {  // <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
    out.push_back(tokens.prefix);
    append(out, prefix);
    out.push_back(tokens.suffix);
    append(out, suffix);
    out.push_back(tokens.middle);
    append(out, middle);
  } else {  // <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle
    out.push_back(tokens.prefix);
    out.push_back(tokens.suffix);
    append(out, suffix);
    out.push_back(tokens.middle);
    append(out, prefix);
    append(out, middle);
  }
  return out;
}

void apply_fim(std::vector<TokenId>& tokens, std::vector<Objective>& objectives, const FimConfig& config,
               const FimTokens& fim_tokens, const Tokenizer& tokenizer, Rng& rng, FimStats* stats) {
  FimStats local;
  const size_t length = tokens.size();
  std::vector<TokenId> out;
  std::vector<Objective> marks;
  out.reserve(length + 16);
  marks.reserve(length + 16);
  std::vector<TokenId> segment;

  // One non-empty segment [begin, end): permuted or kept; returns the objective its tokens (and its EOD) get.
  auto emit = [&](size_t begin, size_t end) {
    ++local.segments;
    auto keep = [&] {
      out.insert(out.end(), tokens.begin() + std::ptrdiff_t(begin), tokens.begin() + std::ptrdiff_t(end));
      marks.insert(marks.end(), end - begin, Objective::kClm);
      return Objective::kClm;
    };
    if (!rng.bernoulli(config.rate)) return keep();
    segment.assign(tokens.begin() + std::ptrdiff_t(begin), tokens.begin() + std::ptrdiff_t(end));
    // Only what its text reproduces can be cut as text: no special tokens, no character split by the packing.
    bool reproducible = true;
    for (TokenId id : segment) reproducible = reproducible && !tokenizer.is_special(id);
    std::string text = reproducible ? tokenizer.decode_bytes(segment) : std::string();
    reproducible = reproducible && first_invalid_utf8(text) == std::string::npos;
    if (!reproducible) {
      ++local.unchanged_lossy;
      return keep();
    }
    // Megatron's draws, in its order: two cut points in [0, n] (n code points), sorted; then the layout.
    const std::vector<size_t> offsets = code_point_offsets(text);
    const uint64_t choices = offsets.size();  // n + 1
    size_t a = size_t(rng.uniform_int(choices)), b = size_t(rng.uniform_int(choices));
    if (a > b) std::swap(a, b);
    const FimLayout layout = rng.bernoulli(config.spm_rate) ? FimLayout::kSpm : FimLayout::kPsm;
    ++(layout == FimLayout::kSpm ? local.spm : local.psm);
    const std::vector<TokenId> permuted = fim_permute(text, offsets[a], offsets[b], layout, fim_tokens, tokenizer);
    out.insert(out.end(), permuted.begin(), permuted.end());
    marks.insert(marks.end(), permuted.size(), Objective::kFim);
    return Objective::kFim;
  };

  size_t start = 0;
  for (size_t i = 0; i < length; ++i) {
    if (tokens[i] != fim_tokens.eod) continue;
    // An EOD belongs to the document it ends: it takes that document's objective (a model trained on FIM learns to
    // stop after the middle). Unlike Megatron, an EOD after an empty segment is kept rather than dropped.
    const Objective objective = i > start ? emit(start, i) : Objective::kClm;
    out.push_back(tokens[i]);
    marks.push_back(objective);
    start = i + 1;
  }
  if (start < length) emit(start, length);

  if (out.size() > length) {  // permuting adds three sentinels and may re-tokenize the cuts: cut the end
    local.truncated += int64_t(out.size() - length);
    out.resize(length);
    marks.resize(length);
  } else if (out.size() < length) {  // or fewer tokens than before: pad, and learn nothing from the padding
    local.padded += int64_t(length - out.size());
    marks.insert(marks.end(), length - out.size(), Objective::kIgnore);
    out.resize(length, fim_tokens.pad);
  }
  tokens.swap(out);
  objectives.swap(marks);
  if (stats) *stats += local;
}

}  // namespace granite
