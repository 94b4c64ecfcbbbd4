// granite-eval as a user runs it: the datasets' own solutions pass through the sandboxed harness (HumanEval 164/164,
// MBPP as in the original harness, an infilling set whole), hostile programs are contained and reported one by one,
// a model's completions are the library's, perplexity is the library's, and bad invocations fail clearly.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "granite/core/json.h"
#include "granite/data/indexed_dataset.h"
#include "granite/eval/code_generation.h"
#include "granite/eval/perplexity.h"
#include "granite/io/pretrained.h"
#include "granite/models/factory.h"
#include "support/paths.h"
#include "support/shell.h"

using Catch::Matchers::Contains;
using granite::test::quoted;
using granite::test::scratch_dir;
using granite::test::source_path;

namespace {

granite::test::ShellRun eval(const std::string& args) {
  return granite::test::shell(quoted(std::string(GRANITE_BINARY_DIR) + "/apps/granite-eval") + " " + args + " 2>&1");
}

// The summary: granite-eval's last stdout line.
granite::Json summary_of(const granite::test::ShellRun& r) {
  INFO(r.output);
  REQUIRE(r.status == 0);
  const size_t end = r.output.find_last_not_of('\n');
  const size_t begin = r.output.rfind('\n', end);
  return granite::Json::parse(r.output.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin + 1)));
}

std::vector<granite::Json> read_jsonl(const std::string& path) {
  std::vector<granite::Json> rows;
  for (const std::string& line : granite::test::read_lines(path)) rows.push_back(granite::Json::parse(line));
  return rows;
}

// A tiny random model over the StarCoder vocabulary, with the shipped tokenizer.
std::string tiny_model_dir(const std::string& name) {
  torch::manual_seed(9);
  auto model = granite::make_model(granite::load_model_config(source_path("configs/models/tiny-llama.json")));
  const std::string dir = scratch_dir(name) + "/model";
  granite::SaveOptions save;
  save.copy_files = {source_path("data/tokenizers/starcoder/tokenizer.json")};
  granite::save_pretrained(*model, dir, save);
  return dir;
}

}  // namespace

TEST_CASE("granite-eval --task humaneval --reference passes 164 of 164", "[apps][eval]") {
  const std::string out = scratch_dir("eval_humaneval_ref") + "/results.jsonl";
  const auto s = summary_of(eval("--task humaneval --reference --output " + quoted(out)));
  CHECK(s["task"] == "humaneval");
  CHECK(s["total"] == 164);
  CHECK(s["passed"] == 164);
  CHECK(s["pass@1"].get<double>() == 1.0);
  const auto rows = read_jsonl(out);
  REQUIRE(rows.size() == 164);
  CHECK(rows[0]["task_id"] == "HumanEval/0");
  CHECK(rows[0]["samples"][0]["result"] == "passed");
  // The isolation that held is reported (here, as root with namespaces: all of it).
  REQUIRE(s.contains("isolation"));
  if (geteuid() == 0) CHECK(s["isolation"]["own_uid"] == true);
}

TEST_CASE("granite-eval --task mbpp --reference: the test split's solutions pass as in the original harness",
          "[apps][eval]") {
  const auto s = summary_of(eval("--task mbpp --reference"));  // the test split, 11-510
  CHECK(s["total"] == 500);
  CHECK(s["passed"] == 500);
  const auto all = summary_of(eval("--task mbpp --reference --split all"));
  CHECK(all["total"] == 974);
  CHECK(all["passed"] == 974);
}

TEST_CASE("granite-eval --task humaneval-infilling --reference passes a whole set", "[apps][eval]") {
  const auto s = summary_of(eval("--task humaneval-infilling --set random-span-light --reference"));
  CHECK(s["total"] == 164);
  CHECK(s["passed"] == 164);
  const auto single = summary_of(eval("--task humaneval-infilling --set single-line --reference --limit 200"));
  CHECK(single["total"] == 200);
  CHECK(single["passed"] == 200);
}

TEST_CASE("hostile programs are contained and reported one by one", "[apps][eval][sandbox]") {
  // A TCP listener of our own: with a fresh network namespace the program cannot reach it.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(listener, 4) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);

  const std::string dir = scratch_dir("eval_hostile");
  const std::string escape = "/tmp/granite-eval-escape-" + std::to_string(getpid());
  std::filesystem::remove(escape);
  // HumanEval-format problems whose "canonical solution" misbehaves; check(f) passes only if f() returns 1.
  const std::vector<std::pair<std::string, std::string>> programs = {
      {"ok", "    return 1\n"},
      {"infinite_loop", "    while True:\n        pass\n"},
      {"fork_bomb", "    import os\n    while True:\n        try:\n            os.fork()\n"
                    "        except OSError:\n            pass\n"},
      {"write_outside", "    open('/etc/granite-eval-escape', 'w').write('x')\n    return 1\n"},
      {"write_tmp", "    open('" + escape + "', 'w').write('x')\n    return 1\n"},
      {"network", "    import socket\n    socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                      "), timeout=1)\n    return 1\n"},
      {"huge_output", "    while True:\n        print('x' * 4096)\n"},
      {"memory_hog", "    b = bytearray(10 ** 11)\n    return 1\n"},
      {"disk_fill", "    with open('big', 'wb') as f:\n        for _ in range(200):\n"
                    "            f.write(b'0' * (1 << 20))\n    return 1\n"},
      {"segfault", "    import ctypes\n    ctypes.string_at(0)\n"},
      {"detached_sleeper", "    import os, time\n    if os.fork() == 0:\n        os.setsid()\n"
                           "        time.sleep(100)\n    return 1\n"},
  };
  {
    std::ofstream data(dir + "/hostile.jsonl");
    for (const auto& [name, body] : programs) {
      data << granite::Json{{"task_id", name}, {"prompt", "def f():\n"}, {"canonical_solution", body},
                            {"test", "def check(candidate):\n    assert candidate() == 1\n"}, {"entry_point", "f"}}
                  .dump()
           << "\n";
    }
  }
  const auto run = eval("--task humaneval --reference --data " + quoted(dir + "/hostile.jsonl") +
                        " --timeout 2 --memory 1GB --jobs 2 --output " + quoted(dir + "/out.jsonl"));
  const auto s = summary_of(run);
  close(listener);
  CHECK(s["total"] == int64_t(programs.size()));
  CHECK(s["seconds"].get<double>() < 30);
  std::map<std::string, std::string> verdict;
  for (const auto& row : read_jsonl(dir + "/out.jsonl"))
    verdict[row["task_id"].get<std::string>()] = row["samples"][0]["result"].get<std::string>();
  for (const auto& [name, result] : verdict) UNSCOPED_INFO(name << ": " << result);
  CHECK(verdict["ok"] == "passed");
  CHECK_THAT(verdict["infinite_loop"], Contains("timed out"));
  CHECK(verdict["fork_bomb"] != "passed");
  CHECK_THAT(verdict["huge_output"], Contains("timed out"));
  CHECK_THAT(verdict["memory_hog"], Contains("failed"));
  CHECK(verdict["disk_fill"] != "passed");
  CHECK_THAT(verdict["segfault"], Contains("signal 11"));
  CHECK(verdict["detached_sleeper"] == "passed");
  CHECK(!std::filesystem::exists("/etc/granite-eval-escape"));
  const auto& iso = s["isolation"];
  if (iso["own_uid"] == true) CHECK(verdict["write_outside"] != "passed");
  if (iso["network"] == true) CHECK(verdict["network"] != "passed");
  if (iso["filesystem"] == true) CHECK(!std::filesystem::exists(escape));  // written to a throwaway /tmp
  std::filesystem::remove(escape);
  // Nothing the programs started is still running: no live (non-zombie) process of its sandbox uids remains.
  if (iso["own_uid"] == true) {
    const auto first = iso["uids"][0].get<uint32_t>(), last = iso["uids"][1].get<uint32_t>();
    CHECK(first >= (1u << 30));
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      struct stat st {};
      if (stat(entry.path().c_str(), &st) != 0 || st.st_uid < first || st.st_uid > last) continue;
      std::ifstream status(entry.path() / "stat");
      std::string pid, comm, state;
      status >> pid >> comm >> state;
      if (!status || state == "Z") continue;
      FAIL("process " << entry.path() << " of sandbox uid " << st.st_uid << " survived (state " << state << ")");
    }
  }
}

TEST_CASE("granite-eval with a model: the library's completions, pass@k for every k <= samples", "[apps][eval]") {
  const std::string model_dir = tiny_model_dir("eval_model");
  const std::string out = scratch_dir("eval_model_out") + "/results.jsonl";
  const auto s = summary_of(eval("--task humaneval --model " + quoted(model_dir) +
                                 " --limit 2 --samples 2 --temperature 0.8 --max-new-tokens 8 --seed 3 --output " +
                                 quoted(out)));
  CHECK(s["total"] == 2);
  CHECK(s["samples"] == 2);
  CHECK(s.contains("pass@1"));
  CHECK(!s.contains("pass@10"));
  const auto rows = read_jsonl(out);
  REQUIRE(rows.size() == 2);

  auto model = granite::load_pretrained(model_dir);
  const auto tokenizer = granite::load_tokenizer(model_dir);
  auto problems = granite::load_code_problems(granite::CodeTask::HumanEval, source_path("data/eval/HumanEval.jsonl.gz"));
  problems.resize(2);
  granite::CodeGenerationOptions o;
  o.samples = 2;
  o.generation.max_new_tokens = 8;
  o.generation.seed = 3;
  o.generation.sampling.greedy = false;
  o.generation.sampling.temperature = 0.8;
  const auto expected = granite::generate_completions(*model, *tokenizer, granite::CodeTask::HumanEval, problems, o);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(rows[i]["task_id"] == problems[i].task_id);
    CHECK(rows[i]["n"] == 2);
    for (size_t k = 0; k < 2; ++k) CHECK(rows[i]["samples"][k]["completion"] == expected[i][k]);
  }
}

TEST_CASE("granite-eval --task perplexity equals the library over the same shards", "[apps][eval][perplexity]") {
  const std::string model_dir = tiny_model_dir("eval_ppl_model");
  const std::string prefix = scratch_dir("eval_ppl_data") + "/shard-00000";
  granite::IndexedDatasetWriter writer(prefix, granite::TokenDtype::UInt16);
  const auto tokenizer = granite::load_tokenizer(model_dir);
  writer.add_document(tokenizer->encode("def add(a, b):\n    return a + b\n"));
  writer.add_document(tokenizer->encode("import os\nprint(os.getcwd())\n"));
  writer.finish();
  const auto s = summary_of(eval("--task perplexity --model " + quoted(model_dir) + " --data " + quoted(prefix) +
                                 " --seq-len 8 --batch-size 2"));
  auto model = granite::load_pretrained(model_dir);
  granite::PerplexityOptions o;
  o.seq_len = 8;
  o.batch_size = 2;
  const auto r = granite::evaluate_perplexity(*model, granite::TokenStream({prefix}, 0, false), o);
  CHECK(s["task"] == "perplexity");
  CHECK(s["tokens"] == r.predicted);
  CHECK(s["loss"].get<double>() == Approx(r.loss()).epsilon(1e-6));
  CHECK(s["perplexity"].get<double>() == Approx(r.perplexity()).epsilon(1e-6));
  CHECK(r.loss() > 0);
}

TEST_CASE("granite-eval invocation errors are clear", "[apps][eval][errors]") {
  const auto none = eval("--task humaneval");
  CHECK(none.status != 0);
  CHECK_THAT(none.output, Contains("exactly one of --model DIR or --reference"));
  const auto samples = eval("--task humaneval --model " + quoted(source_path("tests/fixtures/hf/bigcode_mha")) +
                            " --samples 5");
  CHECK(samples.status != 0);
  CHECK_THAT(samples.output, Contains("--samples 5 needs sampling"));
  const auto data = eval("--task mbpp --reference --data /nonexistent/mbpp.jsonl");
  CHECK(data.status != 0);
  CHECK_THAT(data.output, Contains("/nonexistent/mbpp.jsonl"));
  const auto ppl = eval("--task perplexity --model " + quoted(source_path("tests/fixtures/hf/bigcode_mha")));
  CHECK(ppl.status != 0);
  CHECK_THAT(ppl.output, Contains("needs --data"));
}
