// The command-line programs as a user runs them: output format, equality with the library, exit codes and messages.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/config/model_config.h"
#include "granite/io/pretrained.h"
#include "granite/models/factory.h"
#include "granite/tokenizer/tokenizer.h"
#include "support/tensor_match.h"

using granite::test::scratch_dir;
using granite::test::source_path;

namespace {

struct Run {
  int status;
  std::string output;  // stdout + stderr
};

Run run(const std::string& args) {
  std::string cmd = std::string(GRANITE_BINARY_DIR) + "/apps/" + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string fixture(const std::string& name) { return source_path("tests/fixtures/hf/" + name); }

}  // namespace

TEST_CASE("granite-generate --format json prints the library's greedy ids", "[apps][generate]") {
  auto r = run("granite-generate --model " + fixture("llama_mha_bias_tied") +
               " --prompt-ids 5,17,42 --max-new-tokens 8 --greedy --format json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto j = granite::parse_json(r.output, "granite-generate output");
  auto model = granite::load_pretrained(fixture("llama_mha_bias_tied"));
  granite::GenerationOptions o;
  o.max_new_tokens = 8;
  o.stop_ids = {model->config().eos_token_id};
  REQUIRE(j.at("ids").get<std::vector<int64_t>>() == granite::generate(*model, {5, 17, 42}, o));
}

TEST_CASE("granite-generate rejects bad input with a message and a non-zero exit", "[apps][generate][errors]") {
  auto bad_ids = run("granite-generate --model " + fixture("bigcode_mqa") + " --prompt-ids 5,x,42");
  CHECK(bad_ids.status != 0);
  CHECK_THAT(bad_ids.output, Catch::Contains("\"x\" is not an integer token id"));
  auto no_dir = run("granite-generate --model /nonexistent --prompt-ids 1");
  CHECK(no_dir.status != 0);
  CHECK_THAT(no_dir.output, Catch::Contains("/nonexistent: not a directory"));
  auto root = scratch_dir("cli_noweights");
  std::filesystem::copy_file(fixture("bigcode_mqa") + "/config.json", root + "/config.json");
  auto no_weights = run("granite-generate --model " + root + " --prompt-ids 1,2");
  CHECK(no_weights.status != 0);
  CHECK_THAT(no_weights.output, Catch::Contains("no model weights"));
  auto both = run("granite-generate --model " + fixture("bigcode_mqa") + " --prompt-ids 1 --greedy --top-k 5");
  CHECK(both.status != 0);
  CHECK_THAT(both.output, Catch::Contains("--greedy cannot be combined"));
}

TEST_CASE("granite-convert reshards, casts and depth-upscales into loadable directories", "[apps][convert]") {
  auto root = scratch_dir("cli_convert");
  auto r = run("granite-convert --model " + fixture("bigcode_mha") + " --output " + root +
               "/up --depth-upscale 1 --max-shard-size 100KB");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(std::filesystem::exists(root + "/up/model.safetensors.index.json"));
  auto up = granite::load_pretrained(root + "/up");
  REQUIRE(up->config().num_hidden_layers == 4);  // 3 layers -> 2 * (3 - 1)
  auto again = run("granite-convert --model " + fixture("bigcode_mha") + " --output " + root + "/up");
  CHECK(again.status != 0);
  CHECK_THAT(again.output, Catch::Contains("not empty"));
}

TEST_CASE("granite-generate with a tokenizer in the model directory takes --prompt and prints text", "[apps][generate]") {
  // a tiny random model over the real StarCoder vocabulary, saved with the shipped tokenizer.json
  auto cfg = granite::load_model_config(source_path("configs/models/tiny-llama.json"));
  auto model = granite::make_model(cfg);
  auto dir = scratch_dir("cli_tokenizer") + "/model";
  granite::SaveOptions save;
  save.copy_files = {source_path("data/tokenizers/starcoder/tokenizer.json")};
  granite::save_pretrained(*model, dir, save);
  auto r = run("granite-generate --model " + dir + " --prompt 'def fib(n):' --max-new-tokens 6 --format json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto j = granite::parse_json(r.output, "granite-generate output");
  auto tok = granite::load_tokenizer(dir);
  auto ids = j.at("ids").get<std::vector<granite::TokenId>>();
  REQUIRE(j.at("text").get<std::string>() == tok->decode(ids));
  // the same prompt given as ids gives the same continuation
  std::string csv;
  for (auto id : tok->encode("def fib(n):")) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  auto by_ids = run("granite-generate --model " + dir + " --prompt-ids " + csv + " --max-new-tokens 6 --format json");
  REQUIRE(granite::parse_json(by_ids.output, "output").at("ids") == j.at("ids"));
  auto no_tok = run("granite-generate --model " + fixture("bigcode_mqa") + " --prompt 'x'");
  CHECK(no_tok.status != 0);
  CHECK_THAT(no_tok.output, Catch::Contains("--prompt needs a tokenizer.json"));
}
