// granite-sft as a user runs it: instruction-tuning the tiny model on the bundled Code Alpaca sample (the answer
// loss falls, validation runs on the held-out split), checkpoints that are chat model directories (granite-generate
// --chat answers; tokenizer_config.json carries the Granite chat template), resume equal to an uninterrupted run,
// and bad data stopping with the file and line before anything is written.
#include <catch2/catch.hpp>

#include <fstream>

#include "granite/core/file_status.h"
#include "granite/core/json.h"
#include "granite/instruct/chat_template.h"
#include "support/paths.h"
#include "support/shell.h"

using Catch::Matchers::Contains;
using granite::Json;
using granite::test::quoted;
using granite::test::shell;

namespace {

std::string app(const char* name) { return std::string(GRANITE_BINARY_DIR) + "/apps/" + name; }

granite::test::ShellRun sft(const std::string& output_dir, const std::string& extra) {
  return shell("OMP_NUM_THREADS=1 " + quoted(app("granite-sft")) + " --quiet --config " +
               quoted(granite::test::source_path("configs/train/tiny-sft.json")) + " --output-dir " +
               quoted(output_dir) + " --set data.micro_batch=4 " + extra + " 2>&1");
}

std::vector<Json> metrics(const std::string& dir, const char* key) {
  std::vector<Json> out;
  for (const std::string& line : granite::test::read_lines(dir + "/metrics.jsonl")) {
    Json j = Json::parse(line);
    if (j.contains(key)) out.push_back(j);
  }
  return out;
}

}  // namespace

TEST_CASE("granite-sft tunes the tiny model on Code Alpaca: the answer loss falls, checkpoints are chat models",
          "[apps][instruct]") {
  const std::string out = granite::test::scratch_dir("sft_run");
  const auto r = sft(out, "--max-steps 40 --save-every 0 --set train.eval_every=20");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto train = metrics(out, "loss"), val = metrics(out, "val_loss");
  REQUIRE(train.size() == 40);
  REQUIRE(val.size() == 2);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += train[i]["loss"].get<double>() / 5, last += train[35 + i]["loss"].get<double>() / 5;
  CHECK(first - last > 1.5);  // from ~10.8 (uniform over 49152 tokens)
  CHECK(val[1]["val_loss"].get<double>() < val[0]["val_loss"].get<double>());
  CHECK(train[0]["loss_fim"].is_null());  // alpha 1: answers only, no FIM
  const std::string ckpt = out + "/checkpoints/step-00000040";
  const Json tok = granite::read_json_file(ckpt + "/tokenizer_config.json");
  CHECK(tok["chat_template"].get<std::string>() == granite::jinja_chat_template(granite::ChatTemplate{}));
  CHECK(tok["eos_token"] == "<|endoftext|>");
  CHECK(granite::path_exists(ckpt + "/granite_chat_template.json"));
  const auto answer = shell(quoted(app("granite-generate")) + " --model " + quoted(ckpt) +
                            " --chat --prompt 'Write a Python function that adds two numbers.' --max-new-tokens 12 2>&1");
  INFO(answer.output);
  REQUIRE(answer.status == 0);
  const Json reply = Json::parse(answer.output.substr(answer.output.find('{')));
  CHECK(reply["ids"].size() >= 1);
  CHECK(reply["ids"].size() <= 12);
}

TEST_CASE("granite-sft resumes exactly where it stopped", "[apps][instruct]") {
  const std::string root = granite::test::scratch_dir("sft_resume");
  const std::string common = "--save-every 3 --set train.eval_every=0 --set schedule.decay_steps=10";
  REQUIRE(sft(root + "/whole", common + " --max-steps 6").status == 0);
  REQUIRE(sft(root + "/cut", common + " --max-steps 3").status == 0);
  const auto resumed = sft(root + "/cut", common + " --max-steps 6");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  const auto a = metrics(root + "/whole", "loss"), b = metrics(root + "/cut", "loss");
  REQUIRE(a.size() == 6);
  REQUIRE(b.size() == 6);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << a[i]["step"]);
    CHECK(a[i]["loss"].get<double>() == b[i]["loss"].get<double>());  // bit-exact on the CPU
    CHECK(a[i]["grad_norm"].get<double>() == b[i]["grad_norm"].get<double>());
  }
}

TEST_CASE("granite-sft stops on bad data with the file and line, before writing anything", "[apps][instruct]") {
  const std::string root = granite::test::scratch_dir("sft_bad");
  const std::string bad = root + "/bad.jsonl";
  std::ofstream(bad) << R"({"prompt": "a", "completion": "b"})" << "\n" << R"({"prompt": "a", "completion": )" << "\n";
  const auto r = sft(root + "/out", "--data " + quoted(bad) + " --max-steps 2 --set data.skip_invalid=false");
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Contains(bad + ":2") && Contains("not valid JSON"));
  CHECK_FALSE(granite::path_exists(root + "/out"));
  // Without skip_invalid, the sample's record with an empty answer is an error too (the config skips it).
  const auto strict = sft(root + "/out", "--max-steps 2 --set data.skip_invalid=false");
  CHECK(strict.status != 0);
  CHECK_THAT(strict.output, Contains("codealpaca-sample.jsonl:238") && Contains("no answer"));
  CHECK_FALSE(granite::path_exists(root + "/out"));
}
