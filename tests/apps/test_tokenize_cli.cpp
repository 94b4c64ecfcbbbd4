// granite-tokenize as a user runs it: JSON lines on stdin, equality with the library, --decode round trip, errors
// that name the input line. The tokenizer is a sentencepiece model trained here (tests/support/sentencepiece_models.h).
#include <catch2/catch.hpp>

#include <sstream>

#include "granite/core/json.h"
#include "granite/tokenizer/sentencepiece_tokenizer.h"
#include "support/sentencepiece_models.h"
#include "support/tensor_match.h"

using granite::TokenId;
using namespace granite::test;

namespace {

// Runs granite-tokenize with `args`, stdin from `input_file`; stdout and stderr are kept apart.
struct Run {
  int status;
  std::vector<std::string> out;  // stdout lines
  std::string err;
};
Run tokenize(const std::string& args, const std::string& input_file, const std::string& dir) {
  const std::string err_file = dir + "/stderr.txt";
  auto r = shell(quoted(std::string(GRANITE_BINARY_DIR) + "/apps/granite-tokenize") + " " + args + " < " +
                 quoted(input_file) + " 2> " + quoted(err_file));
  std::string err;
  for (const auto& l : read_lines(err_file)) err += l + "\n";
  std::vector<std::string> out;
  std::istringstream lines(r.output);
  for (std::string l; std::getline(lines, l);) out.push_back(l);
  return {r.status, out, err};
}

std::vector<std::string> json_text_lines(const std::vector<std::string>& texts) {
  std::vector<std::string> lines;
  for (const auto& t : texts) lines.push_back(granite::Json{{"text", t}}.dump());
  return lines;
}

}  // namespace

TEST_CASE("granite-tokenize encodes JSON lines as the library does and --decode inverts it",
          "[apps][tokenize][sentencepiece]") {
  const auto dir = scratch_dir("cli_tokenize");
  const auto model = train_sentencepiece(dir, "m", "bpe", 500, {fim_symbols_flag()});
  const granite::SentencePieceTokenizer tok(model);

  // Every MPL-2.0 line (blank ones too: they are texts like any other) + a few that need JSON escapes.
  std::vector<std::string> texts = read_lines(license_path("MPL-2.0"));
  for (const std::string& t : {std::string("quote \" backslash \\ tab \t newline \n end"),
                               std::string("<fim_prefix>x = 1<fim_suffix>\n<fim_middle>"),
                               std::string("Ünïcödé — 🙂"), std::string()}) {
    texts.push_back(t);
  }
  auto input = json_text_lines(texts);
  // Other keys are ignored; key order does not matter.
  input.push_back(R"({"meta": {"source": "test"}, "text": "the License"})");
  texts.push_back("the License");
  write_lines(dir + "/in.jsonl", input);

  for (const std::string threads : {"1", "2", "0"}) {
    INFO("--threads " << threads);
    auto r = tokenize("--tokenizer " + quoted(model) + " --threads " + threads, dir + "/in.jsonl", dir);
    INFO(r.err);
    REQUIRE(r.status == 0);
    REQUIRE(r.out.size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      INFO("line " << i + 1 << ": " << input[i]);
      auto j = granite::parse_json(r.out[i], "granite-tokenize output");
      CHECK(j.at("ids").get<std::vector<TokenId>>() == tok.encode(texts[i]));
    }
  }

  // --decode on its own output gives the library's decode of those ids.
  auto enc = tokenize("--tokenizer " + quoted(model), dir + "/in.jsonl", dir);
  REQUIRE(enc.status == 0);
  write_lines(dir + "/ids.jsonl", enc.out);
  auto dec = tokenize("--tokenizer " + quoted(model) + " --decode", dir + "/ids.jsonl", dir);
  INFO(dec.err);
  REQUIRE(dec.status == 0);
  REQUIRE(dec.out.size() == texts.size());
  int unchanged = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    INFO("line " << i + 1 << ": " << enc.out[i]);
    const auto text = granite::parse_json(dec.out[i], "granite-tokenize --decode output").at("text").get<std::string>();
    CHECK(text == tok.decode(tok.encode(texts[i])));
    unchanged += text == texts[i];  // sentencepiece normalizes whitespace, so not every line comes back unchanged
  }
  CHECK(unchanged > 100);

  // Empty input, empty output.
  write_lines(dir + "/empty.jsonl", {});
  auto none = tokenize("--tokenizer " + quoted(model), dir + "/empty.jsonl", dir);
  CHECK(none.status == 0);
  CHECK(none.out.empty());
}

TEST_CASE("granite-tokenize names the bad input line and exits non-zero", "[apps][tokenize][errors]") {
  const auto dir = scratch_dir("cli_tokenize_errors");
  const auto model = train_sentencepiece(dir, "m", "bpe", 500);
  const std::string args = "--tokenizer " + quoted(model);

  struct Case {
    std::string bad_line;
    std::string message;
  };
  const std::vector<Case> encode_cases = {
      {R"({"text": "unterminated)", "stdin line 3: invalid JSON"},
      {"", "stdin line 3: empty line"},
      {R"(["text", "x"])", "stdin line 3: expected a JSON object"},
      {R"({"txt": "x"})", "stdin line 3: no \"text\" key"},
      {R"({"text": 42})", "stdin line 3: \"text\" must be a string, got 42"},
      {"{\"text\": \"bad \xff byte\"}", "stdin line 3: invalid JSON"},  // ill-formed UTF-8 inside the JSON string
      {R"({"text": "lone \udc00 surrogate"})", "stdin line 3: invalid JSON"},
  };
  for (const auto& c : encode_cases) {
    INFO("bad line: " << c.bad_line);
    write_lines(dir + "/in.jsonl", {R"({"text": "first"})", R"({"text": "second"})", c.bad_line, R"({"text": "4"})"});
    auto r = tokenize(args, dir + "/in.jsonl", dir);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::StartsWith("granite-tokenize: error: ") && Catch::Contains(c.message));
    CHECK(r.out.size() == 2);  // the lines before the bad one were written
  }

  const std::vector<Case> decode_cases = {
      {R"({"ids": [1, 2, 500]})", "stdin line 2: ids[2] = 500 is out of range: vocab size is 500"},
      {R"({"ids": [-1]})", "stdin line 2: ids[0] = -1 is out of range"},
      {R"({"ids": [18446744073709551615]})", "stdin line 2: ids[0] = 18446744073709551615 is out of range"},
      {R"({"ids": [1, "2"]})", "stdin line 2: ids[1] = \"2\" is not an integer token id"},
      {R"({"ids": [1.5]})", "stdin line 2: ids[0] = 1.5 is not an integer token id"},
      {R"({"ids": "1 2"})", "stdin line 2: \"ids\" must be an array"},
      {R"({"text": "x"})", "stdin line 2: no \"ids\" key"},
  };
  for (const auto& c : decode_cases) {
    INFO("bad line: " << c.bad_line);
    write_lines(dir + "/in.jsonl", {R"({"ids": [10, 11]})", c.bad_line});
    auto r = tokenize(args + " --decode", dir + "/in.jsonl", dir);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    CHECK(r.out.size() == 1);
  }

  // A bad line after the first 4096-line batch: the number counts from the start of the input.
  std::vector<std::string> many(5000, R"({"text": "x"})");
  many[4500] = "not json";
  write_lines(dir + "/many.jsonl", many);
  auto late = tokenize(args + " --threads 2", dir + "/many.jsonl", dir);
  CHECK(late.status == 1);
  CHECK_THAT(late.err, Catch::Contains("stdin line 4501: invalid JSON"));
  CHECK(late.out.size() == 4500);

  auto missing = tokenize("--tokenizer " + quoted(dir + "/missing.model"), dir + "/many.jsonl", dir);
  CHECK(missing.status == 1);
  CHECK_THAT(missing.err, Catch::Contains(dir + "/missing.model"));
  auto threads = tokenize(args + " --threads -1", dir + "/many.jsonl", dir);
  CHECK(threads.status != 0);
  CHECK_THAT(threads.err, Catch::Contains("--threads"));
}
