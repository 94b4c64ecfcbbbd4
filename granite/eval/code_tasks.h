#pragma once
// The functional-correctness benchmarks: their problems, the prompt a model sees, and the program that checks a
// completion. Formats follow the reference harnesses the Granite Code paper's numbers come from:
//   HumanEval (openai/human-eval): prompt = the function signature + docstring; program = prompt + completion + "\n"
//     + test + "\n" + "check(entry_point)"; stop sequences as bigcode-evaluation-harness.
//   MBPP (google-research mbpp, bigcode-evaluation-harness's zero-shot prompt): prompt = '"""\n' + text + "\n" +
//     test_list[0] + '\n"""\n'; program = prompt + completion + "\n" + test_setup_code + "\n" + the test_list
//     asserts; the test split is task_ids 11-510 (the original paper's).
//   HumanEval infilling (openai/human-eval-infilling; single-line, multi-line, random-span): the model fills the
//     middle between `prompt` and `suffix`; program = prompt + completion + suffix + "\n" + test + "\n" + check(..).
// Instruct models (PromptFormat::Instruct) get the natural-language task as a user turn of their chat template;
// HumanEval's answer is then primed with the function's prompt (HumanEvalSynthesize's layout), so the program is
// built exactly as for base models.
#include <string>
#include <vector>

namespace granite {

enum class CodeTask { HumanEval, MBPP, HumanEvalInfilling };
enum class PromptFormat { Completion, Instruct };

struct CodeProblem {
  std::string task_id;
  std::string prompt;       // what the model continues; for infilling, the text before the hole
  std::string suffix;       // infilling: the text after the hole
  std::string reference;    // the dataset's own solution (canonical_solution / MBPP code): --reference runs it
  std::string test;         // the checking code appended to the program
  std::string entry_point;  // HumanEval: the function check() is called with
  std::string setup;        // MBPP: test_setup_code, run between the program and its asserts
  std::string instruction;  // the task in words, for instruct models
};

CodeTask code_task_from_name(const std::string& name);  // "humaneval", "mbpp", "humaneval-infilling"
std::string code_task_name(CodeTask task);

// Reads a dataset (.jsonl or .jsonl.gz, any compression libarchive knows); errors name file:line and the key.
// `mbpp_split`: "test" (11-510), "validation" (511-600), "train" (601-974), "prompt" (1-10) or "all".
std::vector<CodeProblem> load_code_problems(CodeTask task, const std::string& path,
                                            const std::string& mbpp_split = "test");

// The dataset shipped with granite for `task` under `data_dir` (the project's data/eval); for infilling, `set` is
// single-line | multi-line | random-span | random-span-light.
std::string shipped_code_dataset(const std::string& data_dir, CodeTask task, const std::string& set = "single-line");

// The program that passes (exit 0) exactly when `completion` solves the problem.
std::string check_program(CodeTask task, const CodeProblem& problem, const std::string& completion);

// Where a completion ends: it is cut at the earliest of these (bigcode-evaluation-harness's stop sequences; none for
// infilling, whose middle ends at end-of-text) -- the cut text is not part of the completion.
std::vector<std::string> stop_sequences(CodeTask task, PromptFormat format);
std::string truncate_at_stop(const std::string& text, const std::vector<std::string>& stops);

// Instruct: the answer's priming (HumanEval: the problem's prompt; MBPP: nothing). Completion: "".
std::string answer_prefix(CodeTask task, PromptFormat format, const CodeProblem& problem);
// Instruct MBPP answers are free text: the code of the first fenced block when there is one, else the answer.
std::string extract_code(const std::string& answer);

}  // namespace granite
