// Fill-in-the-middle at inference: prompts token-exact against the layout the model was trained on (the training
// sample of a document cut at the same points is the prompt followed by the middle), the middle returned without
// its stop token, and granite-generate --prefix/--suffix giving the same.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "granite/core/json.h"
#include "granite/generate/infill.h"
#include "granite/io/pretrained.h"
#include "granite/models/factory.h"
#include "support/paths.h"
#include "support/shell.h"

namespace {

const granite::Tokenizer& starcoder() {
  static const auto tok = granite::load_tokenizer(granite::test::source_path("data/tokenizers/starcoder/tokenizer.json"));
  return *tok;
}

std::vector<granite::TokenId> plain(const std::string& text) {
  granite::EncodeOptions o;
  o.parse_added_tokens = false;
  return starcoder().encode(text, o);
}

}  // namespace

TEST_CASE("FIM prompts are the training layout without the middle", "[generate][fim]") {
  const granite::Tokenizer& tok = starcoder();
  const auto id = [&](const char* t) { return *tok.token_to_id(t); };
  const std::string prefix = "def area(w, h):\n    ", middle = "return w * h", suffix = "\n\nprint(area(2, 3))\n";
  // The paper's (StarCoder's) PSM and SPM layouts, spelled out.
  std::vector<granite::TokenId> psm{id("<fim_prefix>")};
  for (auto t : plain(prefix)) psm.push_back(t);
  psm.push_back(id("<fim_suffix>"));
  for (auto t : plain(suffix)) psm.push_back(t);
  psm.push_back(id("<fim_middle>"));
  CHECK(granite::fim_prompt(tok, prefix, suffix) == psm);
  std::vector<granite::TokenId> spm{id("<fim_prefix>"), id("<fim_suffix>")};
  for (auto t : plain(suffix)) spm.push_back(t);
  spm.push_back(id("<fim_middle>"));
  for (auto t : plain(prefix)) spm.push_back(t);
  CHECK(granite::fim_prompt(tok, prefix, suffix, granite::FimLayout::kSpm) == spm);
  // What training made of the whole document cut at the same points: the prompt, then the middle.
  const auto fim = granite::FimTokens::from(tok);
  const std::string doc = prefix + middle + suffix;
  auto trained = granite::fim_permute(doc, prefix.size(), prefix.size() + middle.size(), granite::FimLayout::kPsm, fim,
                                      tok);
  auto expected = psm;
  for (auto t : plain(middle)) expected.push_back(t);
  CHECK(trained == expected);
  // Special-token text in the code stays text.
  const auto odd = granite::fim_prompt(tok, "s = '<fim_middle>'\n", "");
  CHECK(std::count(odd.begin(), odd.end(), id("<fim_middle>")) == 1);
}

TEST_CASE("infill returns the middle without its stop token, and granite-generate --prefix/--suffix agrees",
          "[generate][fim][apps]") {
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  torch::manual_seed(3);
  auto model = granite::make_model(cfg);
  const std::string prefix = "def add(a, b): return ", suffix = " # sum";  // no newlines: plain shell quoting
  granite::GenerationOptions options;
  options.max_new_tokens = 8;
  const auto r = granite::infill(*model, starcoder(), prefix, suffix, options);
  // The same as generating from the prompt with end-of-text and <fim_pad> as stops.
  const auto prompt = granite::fim_prompt(starcoder(), prefix, suffix);
  options.stop_ids = {0, *starcoder().token_to_id("<fim_pad>")};
  auto ids = granite::generate(*model, std::vector<int64_t>(prompt.begin(), prompt.end()), options);
  if (r.stopped) {
    REQUIRE(!ids.empty());
    ids.pop_back();
  }
  CHECK(r.ids == ids);
  CHECK(r.middle == starcoder().decode(std::vector<granite::TokenId>(r.ids.begin(), r.ids.end())));
  CHECK((r.stopped || r.ids.size() == 8));
  // The program: a model directory with its tokenizer.
  const std::string dir = granite::test::scratch_dir("infill_model") + "/model";
  granite::SaveOptions save;
  save.copy_files = {granite::test::source_path("data/tokenizers/starcoder/tokenizer.json")};
  granite::save_pretrained(*model, dir, save);
  const auto out = granite::test::shell(granite::test::quoted(std::string(GRANITE_BINARY_DIR) +
                                                              "/apps/granite-generate") +
                                        " --model " + granite::test::quoted(dir) +
                                        " --prefix " + granite::test::quoted(prefix) + " --suffix " +
                                        granite::test::quoted(suffix) + " --max-new-tokens 8 2>&1");
  INFO(out.output);
  REQUIRE(out.status == 0);
  const auto j = granite::Json::parse(out.output);
  CHECK(j["ids"].get<std::vector<int64_t>>() == r.ids);
  CHECK(j["text"] == r.middle);
  const auto both = granite::test::shell(granite::test::quoted(std::string(GRANITE_BINARY_DIR) +
                                                               "/apps/granite-generate") +
                                         " --model " + granite::test::quoted(dir) +
                                         " --prefix x --prompt y 2>&1");
  CHECK(both.status != 0);
}

TEST_CASE("granite-generate answers JSONL requests in order, and reads a prompt from a file or stdin",
          "[generate][apps]") {
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  torch::manual_seed(4);
  auto model = granite::make_model(cfg);
  const std::string root = granite::test::scratch_dir("generate_inputs");
  granite::SaveOptions save;
  save.copy_files = {granite::test::source_path("data/tokenizers/starcoder/tokenizer.json")};
  granite::save_pretrained(*model, root + "/model", save);
  const std::string program = granite::test::quoted(std::string(GRANITE_BINARY_DIR) + "/apps/granite-generate") +
                              " --model " + granite::test::quoted(root + "/model") + " --max-new-tokens 5 ";
  const auto one = [&](const std::string& args) {
    const auto r = granite::test::shell(program + args + " 2>&1");
    INFO(r.output);
    REQUIRE(r.status == 0);
    return granite::Json::parse(r.output);
  };
  const auto text = one("--prompt 'import os'"), ids = one("--prompt-ids 5,17,42"),
             hole = one("--prefix 'def f(x): return ' --suffix ' + 1'");
  std::ofstream(root + "/requests.jsonl") << R"({"prompt": "import os"})" << "\n\n"
                                          << R"({"prompt_ids": [5, 17, 42]})" << "\n"
                                          << R"({"prefix": "def f(x): return ", "suffix": " + 1"})" << "\n";
  const auto batch = granite::test::shell(program + "--input " + granite::test::quoted(root + "/requests.jsonl"));
  INFO(batch.output);
  REQUIRE(batch.status == 0);
  std::vector<granite::Json> lines;
  std::istringstream in(batch.output);
  for (std::string line; std::getline(in, line);) lines.push_back(granite::Json::parse(line));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0]["ids"] == text["ids"]);
  CHECK(lines[0]["line"] == 1);
  CHECK(lines[1]["ids"] == ids["ids"]);
  CHECK(lines[1]["line"] == 3);  // the blank line 2 is skipped, numbering kept
  CHECK(lines[2]["ids"] == hole["ids"]);
  // Generated together (--batch-size), each answer is what its request gets alone, greedy and sampled.
  for (const std::string sampling : {"", "--temperature 1.3 --seed 5 "}) {
    INFO(sampling);
    const std::string requests = granite::test::quoted(root + "/requests.jsonl");
    const auto alone = granite::test::shell(program + sampling + "--input " + requests);
    const auto together = granite::test::shell(program + sampling + "--batch-size 3 --input " + requests);
    REQUIRE(alone.status == 0);
    REQUIRE(together.status == 0);
    CHECK(together.output == alone.output);
  }
  // The prompt from a file and from standard input.
  std::ofstream(root + "/prompt.txt") << "import os";
  CHECK(one("--prompt-file " + granite::test::quoted(root + "/prompt.txt"))["ids"] == text["ids"]);
  const auto piped = granite::test::shell("printf 'import os' | " + program + "--prompt-file -");
  REQUIRE(piped.status == 0);
  CHECK(granite::Json::parse(piped.output)["ids"] == text["ids"]);
  // A bad request names its line.
  std::ofstream(root + "/bad.jsonl") << R"({"prompt": "x"})" << "\n" << R"({"prompt": 3})" << "\n";
  const auto bad = granite::test::shell(program + "--input " + granite::test::quoted(root + "/bad.jsonl") + " 2>&1");
  CHECK(bad.status != 0);
  CHECK(bad.output.find(root + "/bad.jsonl:2") != std::string::npos);
}
