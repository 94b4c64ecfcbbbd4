// SentencePieceTokenizer against sentencepiece's own command-line programs. The models are trained here by spm_train
// on real English (GPL-3 + Apache-2.0 from /usr/share/common-licenses); the text they are checked on is another real
// text (MPL-2.0) plus lines made to exercise normalization: Unicode, digits, whitespace runs, tabs, FIM pieces.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "granite/tokenizer/sentencepiece_tokenizer.h"
#include "support/sentencepiece_models.h"
#include "support/tensor_match.h"

using granite::SentencePieceTokenizer;
using granite::TokenId;
using namespace granite::test;

namespace {

// 50 real lines (MPL-2.0, indentation and trailing spaces kept) + lines aimed at the normalizer.
std::vector<std::string> reference_lines() {
  std::vector<std::string> lines;
  for (const auto& l : read_lines(license_path("MPL-2.0"))) {
    if (l.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(l);
    if (lines.size() == 50) break;
  }
  REQUIRE(lines.size() == 50);
  const std::vector<std::string> made = {
      "  leading, trailing   and   inner runs   ",
      "tabs\tand\t\ttabs",
      "     ",  // whitespace only: encodes to nothing
      "digits 3.14159 2024-01-01 1,000,000 0x7fff 1234567890",
      "Ünïcödé — “quotes” 日本語 🙂",
      "ﬁ ligature, full-width ＡＢ１２",  // NFKC makes them "fi", "AB12"
      "e\xCC\x81 combining acute",        // e + U+0301: NFKC composes it to é
      "<fim_prefix>def f(x):<fim_suffix>    return x<fim_middle>",
      "<s> and </s> are control pieces: as text they are just characters",
  };
  lines.insert(lines.end(), made.begin(), made.end());
  return lines;
}

std::vector<TokenId> parse_id_line(const std::string& line) {
  std::istringstream in(line);
  std::vector<TokenId> ids;
  for (TokenId id; in >> id;) ids.push_back(id);
  REQUIRE(in.eof());
  return ids;
}

bool is_ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// What sentencepiece's default normalizer (nmt_nfkc, remove_extra_whitespaces) makes of ASCII text: tabs become
// spaces, leading/trailing whitespace goes, runs collapse to one space. (NFKC leaves ASCII alone.)
std::string squeeze_ascii_whitespace(const std::string& s) {
  std::string out;
  bool pending_space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// Runs spm_encode (ids) and spm_decode over `lines`, one output line per input line.
struct Reference {
  std::vector<std::vector<TokenId>> ids;
  std::vector<std::string> decoded;
};
Reference spm_reference(const std::string& dir, const std::string& model, const std::vector<std::string>& lines) {
  write_lines(dir + "/lines.txt", lines);
  auto enc = shell(quoted(spm_encode_program()) + " --model=" + quoted(model) + " --output_format=id < " +
                   quoted(dir + "/lines.txt") + " > " + quoted(dir + "/ref.ids") + " 2>&1");
  INFO(enc.output);
  REQUIRE(enc.status == 0);
  auto dec = shell(quoted(spm_decode_program()) + " --model=" + quoted(model) + " --input_format=id < " +
                   quoted(dir + "/ref.ids") + " > " + quoted(dir + "/ref.txt") + " 2>&1");
  INFO(dec.output);
  REQUIRE(dec.status == 0);
  Reference ref;
  for (const auto& l : read_lines(dir + "/ref.ids")) ref.ids.push_back(parse_id_line(l));
  ref.decoded = read_lines(dir + "/ref.txt");
  REQUIRE(ref.ids.size() == lines.size());
  REQUIRE(ref.decoded.size() == lines.size());
  return ref;
}

// The pieces of the .vocab file spm_train writes beside the model, in id order ("piece<TAB>score" lines).
std::vector<std::string> vocab_file_pieces(const std::string& model) {
  std::string vocab = model.substr(0, model.size() - std::string(".model").size()) + ".vocab";
  std::vector<std::string> pieces;
  for (const auto& l : read_lines(vocab)) pieces.push_back(l.substr(0, l.find('\t')));
  return pieces;
}

std::optional<TokenId> index_of(const std::vector<std::string>& pieces, const std::string& piece) {
  auto it = std::find(pieces.begin(), pieces.end(), piece);
  return it == pieces.end() ? std::nullopt : std::optional<TokenId>(TokenId(it - pieces.begin()));
}

}  // namespace

TEST_CASE("SentencePieceTokenizer encodes as spm_encode and decodes as spm_decode", "[tokenizer][sentencepiece]") {
  const std::string type = GENERATE(as<std::string>{}, "bpe", "unigram");
  const auto dir = scratch_dir("sentencepiece_reference_" + type);
  const auto model = train_sentencepiece(dir, "m", type, 500, {fim_symbols_flag()});
  const SentencePieceTokenizer tok(model);
  const auto lines = reference_lines();
  const auto ref = spm_reference(dir, model, lines);

  int exact_round_trips = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO(type << " model, line " << i + 1 << ": \"" << lines[i] << "\"");
    const auto ids = tok.encode(lines[i]);
    CHECK(ids == ref.ids[i]);
    // decode(encode(s)) == s does not hold in general, and should not: sentencepiece normalizes before it encodes
    // (NFKC: "ﬁ" -> "fi", full-width -> ASCII; whitespace: trimmed, runs and tabs -> one space) and characters
    // outside the vocabulary become <unk>, which decodes to " ⁇ ". The right decode is sentencepiece's own, so the
    // reference is spm_decode of spm_encode's ids...
    const auto text = tok.decode(ids);
    CHECK(text == ref.decoded[i]);
    // ...and where nothing is lost (ASCII, no <unk>), the text back is the input with its whitespace normalized.
    if (is_ascii(lines[i]) && std::count(ids.begin(), ids.end(), *tok.special_tokens().unk) == 0) {
      CHECK(text == squeeze_ascii_whitespace(lines[i]));
      ++exact_round_trips;
    }
  }
  // Most lines take that strict path: the check above is not vacuous.
  CHECK(exact_round_trips >= 45);
}

TEST_CASE("SentencePieceTokenizer vocabulary and special tokens agree with spm_train's .vocab file",
          "[tokenizer][sentencepiece]") {
  const auto dir = scratch_dir("sentencepiece_vocab");

  SECTION("BPE with the FIM pieces as user-defined symbols") {
    const auto model = train_sentencepiece(dir, "fim", "bpe", 500, {fim_symbols_flag()});
    const SentencePieceTokenizer tok(model);
    const auto pieces = vocab_file_pieces(model);
    REQUIRE(tok.vocab_size() == 500);
    REQUIRE(pieces.size() == 500);
    for (size_t id = 0; id < pieces.size(); ++id) {
      INFO("id " << id << " piece \"" << pieces[id] << "\"");
      CHECK(tok.id_to_token(TokenId(id)) == pieces[id]);
      CHECK(tok.token_to_id(pieces[id]) == std::optional<TokenId>(TokenId(id)));
    }
    const auto& sp = tok.special_tokens();
    CHECK(sp.unk == index_of(pieces, "<unk>"));
    CHECK(sp.bos == index_of(pieces, "<s>"));
    CHECK(sp.eos == index_of(pieces, "</s>"));
    CHECK_FALSE(sp.pad.has_value());  // spm_train's default --pad_id=-1
    REQUIRE(sp.fim_prefix.has_value());
    REQUIRE(sp.fim_middle.has_value());
    REQUIRE(sp.fim_suffix.has_value());
    REQUIRE(sp.fim_pad.has_value());
    CHECK(sp.fim_prefix == index_of(pieces, "<fim_prefix>"));
    CHECK(sp.fim_middle == index_of(pieces, "<fim_middle>"));
    CHECK(sp.fim_suffix == index_of(pieces, "<fim_suffix>"));
    CHECK(sp.fim_pad == index_of(pieces, "<fim_pad>"));

    // Unknown pieces are absent (PieceToId would say <unk>); <unk> itself is found.
    CHECK_FALSE(tok.token_to_id("no such piece").has_value());
    CHECK_FALSE(tok.token_to_id("").has_value());
    CHECK(tok.token_to_id("<unk>") == sp.unk);

    // FIM pieces written in the text become their ids, in order.
    const auto ids = tok.encode("<fim_prefix>def f():<fim_suffix>\n    return 1<fim_middle>");
    std::vector<TokenId> fims;
    for (TokenId id : ids) {
      if (id == *sp.fim_prefix || id == *sp.fim_middle || id == *sp.fim_suffix) fims.push_back(id);
    }
    CHECK(fims == std::vector<TokenId>{*sp.fim_prefix, *sp.fim_suffix, *sp.fim_middle});
    // sentencepiece always matches its user-defined symbols: parse_added_tokens = false cannot change that.
    granite::EncodeOptions plain;
    plain.parse_added_tokens = false;
    CHECK(tok.encode("<fim_prefix>def", plain) == tok.encode("<fim_prefix>def"));
  }

  SECTION("unigram without BOS, with PAD and without FIM pieces") {
    const auto model = train_sentencepiece(dir, "pad", "unigram", 400, {"--bos_id=-1", "--pad_id=1"});
    const SentencePieceTokenizer tok(model);
    const auto pieces = vocab_file_pieces(model);
    REQUIRE(tok.vocab_size() == 400);
    const auto& sp = tok.special_tokens();
    CHECK(sp.unk == std::optional<TokenId>(0));
    CHECK_FALSE(sp.bos.has_value());
    CHECK(sp.pad == std::optional<TokenId>(1));
    CHECK(pieces[1] == "<pad>");
    CHECK(sp.eos == index_of(pieces, "</s>"));
    CHECK_FALSE(sp.fim_prefix.has_value());
    CHECK_FALSE(sp.fim_middle.has_value());
    CHECK_FALSE(sp.fim_suffix.has_value());
    CHECK_FALSE(sp.fim_pad.has_value());
  }
}

TEST_CASE("SentencePieceTokenizer decode skips special tokens on request and turns broken bytes into U+FFFD",
          "[tokenizer][sentencepiece]") {
  const auto dir = scratch_dir("sentencepiece_decode");

  SECTION("skip_special_tokens drops control pieces and <unk>") {
    const auto model = train_sentencepiece(dir, "m", "bpe", 500);
    const SentencePieceTokenizer tok(model);
    const auto& sp = tok.special_tokens();
    auto ids = tok.encode("the terms of this License");
    std::vector<TokenId> with_specials = {*sp.bos};
    with_specials.insert(with_specials.end(), ids.begin(), ids.end());
    with_specials.push_back(*sp.unk);
    with_specials.push_back(*sp.eos);
    CHECK(tok.decode(with_specials, /*skip_special_tokens=*/true) == "the terms of this License");
    // Without skipping, sentencepiece's own rendering: control pieces are empty, <unk> is " ⁇ " (as spm_decode).
    auto ref = spm_reference(dir, model, {"the terms of this License"});
    CHECK(tok.decode(with_specials) == ref.decoded[0] + " ⁇ ");
  }

  SECTION("a --byte_fallback model round-trips any UTF-8 text; a lone byte decodes to U+FFFD") {
    const auto model = train_sentencepiece(dir, "bytes", "bpe", 600, {"--byte_fallback=true"});
    const SentencePieceTokenizer tok(model);
    // No character of it is lost (no <unk>), and NFKC leaves it as it is.
    const std::string text = "Ünïcödé — “quotes” 日本語 🙂";
    const auto ids = tok.encode(text);
    CHECK(std::count(ids.begin(), ids.end(), *tok.special_tokens().unk) == 0);
    CHECK(tok.decode(ids) == text);
    CHECK(ids == spm_reference(dir, model, {text}).ids[0]);
    const auto e6 = tok.token_to_id("<0xE6>");  // first byte of 日: alone it is not UTF-8
    REQUIRE(e6.has_value());
    CHECK(tok.decode({*e6}) == "\xEF\xBF\xBD");
  }
}

TEST_CASE("SentencePieceTokenizer rejects bad models and invalid UTF-8 and bad ids with clear messages",
          "[tokenizer][sentencepiece][errors]") {
  const auto dir = scratch_dir("sentencepiece_errors");

  SECTION("missing model file") {
    REQUIRE_THROWS_WITH(SentencePieceTokenizer(dir + "/missing.model"),
                        Catch::Contains("cannot load sentencepiece model " + dir + "/missing.model") &&
                            Catch::Contains("No such file or directory"));
  }
  SECTION("a file that is not a model") {
    write_lines(dir + "/garbage.model", {"this is not a sentencepiece model", "\x01\x02\xff"});
    REQUIRE_THROWS_WITH(SentencePieceTokenizer(dir + "/garbage.model"),
                        Catch::Contains("cannot load sentencepiece model " + dir + "/garbage.model") &&
                            Catch::Contains("not a valid sentencepiece model file"));
  }

  const SentencePieceTokenizer tok(train_sentencepiece(dir, "m", "bpe", 500));
  SECTION("invalid UTF-8, with its byte offset") {
    REQUIRE_THROWS_WITH(tok.encode("abc\xff"), Catch::Contains("invalid UTF-8 at byte 3"));
    REQUIRE_THROWS_WITH(tok.encode("License \xE6\x97"), Catch::Contains("invalid UTF-8 at byte 8"));  // truncated
    REQUIRE_THROWS_WITH(tok.encode("\xED\xA0\x80"), Catch::Contains("invalid UTF-8 at byte 0"));      // surrogate
    REQUIRE_THROWS_WITH(tok.encode("\xC0\xAF"), Catch::Contains("invalid UTF-8 at byte 0"));          // overlong
  }
  SECTION("ids out of range") {
    REQUIRE_THROWS_WITH(tok.decode({5, 500}),
                        Catch::Contains("token id 500 is out of range") && Catch::Contains("vocab size is 500"));
    REQUIRE_THROWS_WITH(tok.decode({-1}), Catch::Contains("token id -1 is out of range"));
    REQUIRE_THROWS_WITH(tok.id_to_token(100000), Catch::Contains("token id 100000 is out of range"));
  }
}

TEST_CASE("SentencePieceTokenizer encode_batch on 2 threads equals encode in input order",
          "[tokenizer][sentencepiece]") {
  const auto dir = scratch_dir("sentencepiece_batch");
  const SentencePieceTokenizer tok(train_sentencepiece(dir, "m", "unigram", 500, {fim_symbols_flag()}));
  std::vector<std::string> texts = read_lines(license_path("MPL-2.0"));  // ~370 lines, blank ones included
  for (const auto& l : reference_lines()) texts.push_back(l);
  std::vector<std::vector<TokenId>> expected;
  for (const auto& t : texts) expected.push_back(tok.encode(t));
  CHECK(tok.encode_batch(texts, 2) == expected);
  CHECK(tok.encode_batch(texts) == expected);  // hardware concurrency
  CHECK(tok.encode_batch({}, 2).empty());
  // A bad text anywhere in the batch raises.
  texts[texts.size() / 2] = "bad \xff";
  REQUIRE_THROWS_WITH(tok.encode_batch(texts, 2), Catch::Contains("invalid UTF-8"));
}

TEST_CASE("load_tokenizer opens sentencepiece .model files and directories holding tokenizer.model",
          "[tokenizer][sentencepiece]") {
  const auto dir = scratch_dir("sentencepiece_load");
  const auto model = train_sentencepiece(dir, "m", "bpe", 500, {fim_symbols_flag()});
  const SentencePieceTokenizer direct(model);
  const std::string text = "You may not use this file except in compliance with the License.";

  auto from_file = granite::load_tokenizer(model);
  REQUIRE(dynamic_cast<const SentencePieceTokenizer*>(from_file.get()) != nullptr);
  CHECK(from_file->encode(text) == direct.encode(text));
  CHECK(from_file->special_tokens().fim_middle == direct.special_tokens().fim_middle);

  std::filesystem::create_directories(dir + "/hf");
  std::filesystem::copy_file(model, dir + "/hf/tokenizer.model");
  auto from_dir = granite::load_tokenizer(dir + "/hf");
  REQUIRE(dynamic_cast<const SentencePieceTokenizer*>(from_dir.get()) != nullptr);
  CHECK(from_dir->encode(text) == direct.encode(text));
}
