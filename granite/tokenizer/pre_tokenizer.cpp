#include "granite/tokenizer/pre_tokenizer.h"

#include "granite/core/check.h"
#include "granite/tokenizer/gpt2_split.h"
#include "granite/tokenizer/unicode.h"

namespace granite {

// HF tokenizers byte_level.rs: r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct PreTokenizer::Step {
  virtual ~Step() = default;
  virtual void apply(std::string_view piece, std::vector<std::string_view>& out) const = 0;
};

namespace {

// Keeps the regex matches as pieces, and (Isolated) the text between them too, or (Removed) drops the matches.
class RegexSplit : public PreTokenizer::Step {
 public:
  RegexSplit(const std::string& pattern, bool keep_matches, bool keep_gaps, const std::string& where)
      : regex_(pattern, where), keep_matches_(keep_matches), keep_gaps_(keep_gaps) {}
  void apply(std::string_view piece, std::vector<std::string_view>& out) const override {
    thread_local std::vector<std::pair<size_t, size_t>> spans;
    spans.clear();
    regex_.find_all(piece, spans);
    size_t last = 0;
    for (auto [b, e] : spans) {
      if (keep_gaps_ && b > last) out.push_back(piece.substr(last, b - last));
      if (keep_matches_) out.push_back(piece.substr(b, e - b));
      last = e;
    }
    if (keep_gaps_ && last < piece.size()) out.push_back(piece.substr(last));
  }

 private:
  Regex regex_;
  bool keep_matches_, keep_gaps_;
};

// GPT-2's pattern, Isolated, by the hand-written scanner (see gpt2_split.h): same pieces, several times faster.
class Gpt2Split : public PreTokenizer::Step {
 public:
  void apply(std::string_view piece, std::vector<std::string_view>& out) const override { split_gpt2(piece, out); }
};

// A Split step: GPT-2's pattern isolated goes to the fast scanner, any other pattern to the regex engine.
std::unique_ptr<PreTokenizer::Step> make_split(const std::string& pattern, bool keep_matches, const std::string& at) {
  if (pattern == kGpt2SplitPattern && keep_matches) return std::make_unique<Gpt2Split>();
  return std::make_unique<RegexSplit>(pattern, keep_matches, true, at);
}

// HF Digits: numeric chars (Rust char::is_numeric) isolated one by one, or as runs.
class Digits : public PreTokenizer::Step {
 public:
  explicit Digits(bool individual) : individual_(individual) {}
  void apply(std::string_view piece, std::vector<std::string_view>& out) const override {
    size_t start = 0;  // first byte not yet emitted
    bool in_run = false;
    for (size_t i = 0; i < piece.size();) {
      int32_t cp = static_cast<unsigned char>(piece[i]);
      size_t n = 1;
      bool digit;
      if (cp < 0x80) {  // ASCII fast path: code is mostly ASCII, and only 0-9 are numeric there
        digit = cp >= '0' && cp <= '9';
      } else {
        n = size_t(utf8_next(piece, i, &cp));
        digit = is_numeric(cp);
      }
      if (individual_ && digit) {  // flush what precedes, then the digit alone
        if (i > start) out.push_back(piece.substr(start, i - start));
        out.push_back(piece.substr(i, n));
        start = i + n;
      } else if (!individual_ && digit != in_run && i > start) {  // a digit run starts or ends here
        out.push_back(piece.substr(start, i - start));
        start = i;
      }
      in_run = digit;
      i += n;
    }
    if (start < piece.size()) out.push_back(piece.substr(start));
  }

 private:
  bool individual_;
};

}  // namespace

PreTokenizer::~PreTokenizer() = default;

PreTokenizer::PreTokenizer(const Json& spec, const std::string& where) {
  if (spec.is_null()) return;
  std::vector<const Json*> flat;
  if (spec.is_object() && spec.value("type", "") == "Sequence") {
    JsonReader seq(spec, where + ": pre_tokenizer");
    seq.ignore("type");
    const Json* list = seq.raw("pretokenizers");
    GRANITE_CHECK(list && list->is_array(), where, ": pre_tokenizer Sequence needs a 'pretokenizers' list");
    seq.finish();
    for (const auto& s : *list) flat.push_back(&s);
  } else {
    flat.push_back(&spec);
  }
  for (size_t i = 0; i < flat.size(); ++i) {
    const Json& s = *flat[i];
    GRANITE_CHECK(s.is_object() && s.contains("type") && s["type"].is_string(), where,
                  ": pre_tokenizer entry without a type: ", json_preview(s));
    const std::string type = s["type"];
    const std::string at = where + ": pre_tokenizer " + type;
    JsonReader r(s, at);
    r.ignore("type");
    if (type == "Digits") {
      steps_.push_back(std::make_unique<Digits>(r.optional<bool>("individual_digits", false)));
    } else if (type == "ByteLevel") {
      bool prefix = r.optional<bool>("add_prefix_space", false);
      bool use_regex = r.optional<bool>("use_regex", true);
      r.ignore("trim_offsets");  // offsets only; we do not produce offsets
      GRANITE_CHECK(!prefix, at, ": add_prefix_space true is not supported");
      if (use_regex) steps_.push_back(make_split(kGpt2SplitPattern, true, at));
    } else if (type == "Split") {
      const Json* pattern = r.raw("pattern");
      GRANITE_CHECK(pattern && pattern->is_object() && pattern->size() == 1, at,
                    ": 'pattern' must be {\"Regex\": ...} or {\"String\": ...}, got ",
                    pattern ? json_preview(*pattern) : "nothing");
      std::string regex;
      if (pattern->contains("Regex")) {
        regex = (*pattern)["Regex"].get<std::string>();
      } else if (pattern->contains("String")) {
        regex = regex_escape((*pattern)["String"].get<std::string>());
      } else {
        GRANITE_FAIL(at, ": 'pattern' must be {\"Regex\": ...} or {\"String\": ...}, got ", json_preview(*pattern));
      }
      const std::string behavior = r.required<std::string>("behavior");
      GRANITE_CHECK(!r.optional<bool>("invert", false), at, ": invert true is not supported");
      GRANITE_CHECK(behavior == "Isolated" || behavior == "Removed", at, ": behavior \"", behavior,
                    "\" is not supported (Isolated, Removed)");
      steps_.push_back(make_split(regex, behavior == "Isolated", at));
    } else {
      GRANITE_FAIL(at, ": pre-tokenizer type \"", type,
                   "\" is not supported (supported: Sequence, Digits, ByteLevel, Split)");
    }
    r.finish();
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back(text);
  thread_local std::vector<std::string_view> next;
  for (const auto& step : steps_) {
    next.clear();
    for (auto piece : pieces) step->apply(piece, next);
    pieces.swap(next);
  }
}

}  // namespace granite
