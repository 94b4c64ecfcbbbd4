// The benchmarks' data and formats: the shipped datasets load whole, prompts and check programs are laid out as the
// reference harnesses lay them out, completions are cut at the stop sequences, pass@k is the unbiased estimator.
#include <catch2/catch.hpp>

#include <fstream>

#include "granite/core/check.h"
#include "granite/eval/code_tasks.h"
#include "granite/eval/pass_at_k.h"
#include "support/paths.h"

using Catch::Matchers::Contains;
using granite::CodeTask;
using granite::test::source_path;

namespace {

std::string shipped(CodeTask task, const std::string& set = "single-line") {
  return granite::shipped_code_dataset(source_path("data/eval"), task, set);
}

// C(n, k) exactly, for the small n of the estimator test.
double binomial(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  double r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * double(n - k + i) / double(i);
  return r;
}

}  // namespace

TEST_CASE("pass@k is 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)", "[eval]") {
  for (int64_t n = 1; n <= 20; ++n)
    for (int64_t c = 0; c <= n; ++c)
      for (int64_t k = 1; k <= n; ++k) {
        INFO("n=" << n << " c=" << c << " k=" << k);
        REQUIRE(granite::pass_at_k(n, c, k) == Approx(1.0 - binomial(n - c, k) / binomial(n, k)).margin(1e-12));
      }
  CHECK(granite::pass_at_k(10, 3, 1) == Approx(0.3));
  CHECK(granite::pass_at_k(200, 0, 100) == 0.0);
  CHECK(granite::mean_pass_at_k({1, 1, 1, 1}, {1, 0, 1, 1}, 1) == Approx(0.75));
  CHECK_THROWS_WITH(granite::pass_at_k(5, 2, 10), Contains("k <= samples (5)"));
  CHECK_THROWS_WITH(granite::pass_at_k(5, 6, 1), Contains("correct (6)"));
}

TEST_CASE("the shipped HumanEval, MBPP and HumanEval-infilling datasets load whole", "[eval]") {
  const auto humaneval = granite::load_code_problems(CodeTask::HumanEval, shipped(CodeTask::HumanEval));
  REQUIRE(humaneval.size() == 164);
  CHECK(humaneval[0].task_id == "HumanEval/0");
  CHECK(humaneval[0].entry_point == "has_close_elements");
  CHECK(humaneval[163].task_id == "HumanEval/163");
  CHECK_THAT(humaneval[0].instruction, Contains("`has_close_elements`"));

  const auto mbpp = granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP));  // the test split
  REQUIRE(mbpp.size() == 500);
  CHECK(mbpp.front().task_id == "MBPP/11");
  CHECK(mbpp.back().task_id == "MBPP/510");
  CHECK(granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP), "all").size() == 974);
  CHECK(granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP), "validation").size() == 90);
  CHECK(granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP), "prompt").size() == 10);

  const std::pair<const char*, size_t> sets[] = {
      {"single-line", 1033}, {"multi-line", 5815}, {"random-span", 1640}, {"random-span-light", 164}};
  for (const auto& [set, count] : sets) {
    INFO(set);
    const auto problems =
        granite::load_code_problems(CodeTask::HumanEvalInfilling, shipped(CodeTask::HumanEvalInfilling, set));
    CHECK(problems.size() == count);
    CHECK(!problems[0].suffix.empty());
  }
}

TEST_CASE("prompts and check programs follow the reference harnesses' layout", "[eval]") {
  const auto humaneval = granite::load_code_problems(CodeTask::HumanEval, shipped(CodeTask::HumanEval));
  const auto& h = humaneval[0];
  // openai/human-eval execution.py: problem["prompt"] + completion + "\n" + problem["test"] + "\n" + check(entry)
  CHECK(granite::check_program(CodeTask::HumanEval, h, "    return 1\n") ==
        h.prompt + "    return 1\n" + "\n" + h.test + "\n" + "check(has_close_elements)\n");
  CHECK(granite::answer_prefix(CodeTask::HumanEval, granite::PromptFormat::Instruct, h) == h.prompt);
  CHECK(granite::answer_prefix(CodeTask::HumanEval, granite::PromptFormat::Completion, h).empty());

  // bigcode-evaluation-harness mbpp.py: '"""\n{text}\n{test_list[0]}\n"""\n'
  const auto mbpp = granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP));
  const auto& m = mbpp[0];  // task 11
  CHECK(m.prompt ==
        "\"\"\"\nWrite a python function to remove first and last occurrence of a given character from the string.\n"
        "assert remove_Occ(\"hello\",\"l\") == \"heo\"\n\"\"\"\n");
  CHECK(m.test == "assert remove_Occ(\"hello\",\"l\") == \"heo\"\nassert remove_Occ(\"abcda\",\"a\") == \"bcd\"\n"
                  "assert remove_Occ(\"PHP\",\"P\") == \"H\"\n");
  CHECK(granite::check_program(CodeTask::MBPP, m, "def f(): pass") == m.prompt + "def f(): pass\n" + "\n" + m.test);
  // test_setup_code uses the solution's own classes, so it runs after the code (task 367 builds a Node tree).
  const auto all = granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP), "all");
  const auto& with_setup = all[366];
  REQUIRE(with_setup.task_id == "MBPP/367");
  CHECK(granite::check_program(CodeTask::MBPP, with_setup, "C") ==
        with_setup.prompt + "C\n" + with_setup.setup + "\n" + with_setup.test);

  // openai/human-eval-infilling execution.py: prompt + completion + suffix + "\n" + test + "\n" + check(entry)
  const auto fill = granite::load_code_problems(CodeTask::HumanEvalInfilling,
                                                shipped(CodeTask::HumanEvalInfilling, "random-span-light"));
  const auto& f = fill[0];
  CHECK(granite::check_program(CodeTask::HumanEvalInfilling, f, "X") ==
        f.prompt + "X" + f.suffix + "\n" + f.test + "\n" + "check(" + f.entry_point + ")\n");
}

TEST_CASE("completions end at the first stop sequence, instruct answers give their code", "[eval]") {
  const auto stops = granite::stop_sequences(CodeTask::HumanEval, granite::PromptFormat::Completion);
  CHECK(granite::truncate_at_stop("    return x\n\ndef other():\n    pass\nprint(1)", stops) == "    return x\n");
  CHECK(granite::truncate_at_stop("    return x\n", stops) == "    return x\n");
  CHECK(granite::truncate_at_stop("  a\nif __name__\n#c", stops) == "  a");  // the earliest of several
  CHECK(granite::stop_sequences(CodeTask::HumanEvalInfilling, granite::PromptFormat::Completion).empty());
  CHECK(granite::extract_code("Here it is:\n```python\ndef f():\n    return 1\n```\nDone.") ==
        "def f():\n    return 1\n");
  CHECK(granite::extract_code("def f(): return 1") == "def f(): return 1");
}

TEST_CASE("bad benchmark files and names are clear errors", "[eval][errors]") {
  const std::string dir = granite::test::scratch_dir("eval_bad_data");
  std::ofstream(dir + "/bad.jsonl") << R"({"task_id": "A/0", "prompt": "p", "canonical_solution": "s", "test": "t", "entry_point": "f"})"
                                    << "\n\n" << R"({"task_id": "A/1", "prompt": "p", "test": "t", "entry_point": "f"})"
                                    << "\n";
  CHECK_THROWS_WITH(granite::load_code_problems(CodeTask::HumanEval, dir + "/bad.jsonl"),
                    Contains("bad.jsonl:3: missing \"canonical_solution\""));
  std::ofstream(dir + "/broken.jsonl") << "{\"task_id\": \n";
  CHECK_THROWS_WITH(granite::load_code_problems(CodeTask::HumanEval, dir + "/broken.jsonl"),
                    Contains("broken.jsonl:1"));
  CHECK_THROWS_WITH(granite::load_code_problems(CodeTask::HumanEval, dir + "/missing.jsonl"),
                    Contains("missing.jsonl"));
  CHECK_THROWS_WITH(granite::load_code_problems(CodeTask::MBPP, shipped(CodeTask::MBPP), "dev"),
                    Contains("unknown MBPP split \"dev\""));
  CHECK_THROWS_WITH(granite::shipped_code_dataset("d", CodeTask::HumanEvalInfilling, "two-line"),
                    Contains("unknown infilling set \"two-line\""));
  CHECK_THROWS_WITH(granite::code_task_from_name("apps"), Contains("unknown code task \"apps\""));
}
