#include "granite/eval/code_tasks.h"

#include <archive.h>

#include <algorithm>
#include <memory>

#include "granite/core/check.h"
#include "granite/core/json.h"

namespace granite {

namespace {

// The whole (decompressed) text of a file: plain, .gz, .xz, .zst, ... through libarchive's raw format.
std::string read_maybe_compressed(const std::string& path) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  archive_read_support_format_empty(a.get());
  GRANITE_CHECK(archive_read_open_filename(a.get(), path.c_str(), 1 << 16) == ARCHIVE_OK, "cannot read ", path, ": ",
                archive_error_string(a.get()));
  std::string text;
  archive_entry* entry = nullptr;
  const int header = archive_read_next_header(a.get(), &entry);
  if (header == ARCHIVE_EOF) return text;
  GRANITE_CHECK(header == ARCHIVE_OK, "cannot read ", path, ": ", archive_error_string(a.get()));
  char buffer[1 << 16];
  while (true) {
    const la_ssize_t n = archive_read_data(a.get(), buffer, sizeof buffer);
    GRANITE_CHECK(n >= 0, "cannot decompress ", path, ": ", archive_error_string(a.get()));
    if (n == 0) break;
    text.append(buffer, size_t(n));
  }
  return text;
}

std::string string_field(const Json& j, const char* key, const std::string& where) {
  GRANITE_CHECK(j.contains(key), where, ": missing \"", key, "\"");
  GRANITE_CHECK(j[key].is_string(), where, ": \"", key, "\" must be a string, got ", json_preview(j[key]));
  return j[key].get<std::string>();
}

CodeProblem humaneval_problem(const Json& j, const std::string& where, bool infilling) {
  CodeProblem p;
  p.task_id = string_field(j, "task_id", where);
  p.prompt = string_field(j, "prompt", where);
  if (infilling) p.suffix = string_field(j, "suffix", where);
  p.reference = string_field(j, "canonical_solution", where);
  p.test = string_field(j, "test", where);
  p.entry_point = string_field(j, "entry_point", where);
  p.instruction = "Write a Python function `" + p.entry_point + "` to solve the following problem:\n" + p.prompt;
  return p;
}

// test_split ranges of the MBPP paper (Austin et al. 2021, section 2.1).
bool in_mbpp_split(int64_t id, const std::string& split) {
  if (split == "all") return true;
  if (split == "prompt") return id >= 1 && id <= 10;
  if (split == "test") return id >= 11 && id <= 510;
  if (split == "validation") return id >= 511 && id <= 600;
  if (split == "train") return id >= 601 && id <= 974;
  GRANITE_FAIL("unknown MBPP split \"", split, "\" (expected test, validation, train, prompt or all)");
}

CodeProblem mbpp_problem(const Json& j, const std::string& where) {
  CodeProblem p;
  GRANITE_CHECK(j.contains("task_id") && j["task_id"].is_number_integer(), where,
                ": \"task_id\" must be an integer");
  p.task_id = "MBPP/" + std::to_string(j["task_id"].get<int64_t>());
  const std::string text = string_field(j, "text", where);
  p.reference = string_field(j, "code", where);
  p.setup = j.contains("test_setup_code") ? string_field(j, "test_setup_code", where) : "";
  GRANITE_CHECK(j.contains("test_list") && j["test_list"].is_array() && !j["test_list"].empty(), where,
                ": \"test_list\" must be a non-empty array of assert statements");
  std::vector<std::string> tests;
  for (const auto& t : j["test_list"]) {
    GRANITE_CHECK(t.is_string(), where, ": \"test_list\" holds ", json_preview(t));
    tests.push_back(t.get<std::string>());
  }
  p.prompt = "\"\"\"\n" + text + "\n" + tests[0] + "\n\"\"\"\n";
  for (const std::string& t : tests) p.test += t + "\n";
  p.instruction = text + "\nYour code should pass these tests:\n\n" + p.test;
  return p;
}

}  // namespace

CodeTask code_task_from_name(const std::string& name) {
  if (name == "humaneval") return CodeTask::HumanEval;
  if (name == "mbpp") return CodeTask::MBPP;
  if (name == "humaneval-infilling") return CodeTask::HumanEvalInfilling;
  GRANITE_FAIL("unknown code task \"", name, "\" (expected humaneval, mbpp or humaneval-infilling)");
}

std::string code_task_name(CodeTask task) {
  switch (task) {
    case CodeTask::HumanEval: return "humaneval";
    case CodeTask::MBPP: return "mbpp";
    case CodeTask::HumanEvalInfilling: return "humaneval-infilling";
  }
  return "?";
}

std::vector<CodeProblem> load_code_problems(CodeTask task, const std::string& path, const std::string& mbpp_split) {
  if (task == CodeTask::MBPP) in_mbpp_split(1, mbpp_split);  // validates the name before reading
  const std::string text = read_maybe_compressed(path);
  std::vector<CodeProblem> problems;
  size_t begin = 0;
  for (int64_t line_no = 1; begin < text.size(); ++line_no) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const Json j = parse_json(line, where);
    GRANITE_CHECK(j.is_object(), where, ": expected a JSON object, got ", json_preview(j));
    if (task == CodeTask::MBPP) {
      CodeProblem p = mbpp_problem(j, where);
      if (in_mbpp_split(std::stoll(p.task_id.substr(5)), mbpp_split)) problems.push_back(std::move(p));
    } else {
      problems.push_back(humaneval_problem(j, where, task == CodeTask::HumanEvalInfilling));
    }
  }
  GRANITE_CHECK(!problems.empty(), path, ": no problems", task == CodeTask::MBPP ? " in split " + mbpp_split : "");
  return problems;
}

std::string shipped_code_dataset(const std::string& data_dir, CodeTask task, const std::string& set) {
  switch (task) {
    case CodeTask::HumanEval: return data_dir + "/HumanEval.jsonl.gz";
    case CodeTask::MBPP: return data_dir + "/mbpp.jsonl";
    case CodeTask::HumanEvalInfilling: {
      const char* names[][2] = {{"single-line", "SingleLineInfilling"},
                                {"multi-line", "MultiLineInfilling"},
                                {"random-span", "RandomSpanInfilling"},
                                {"random-span-light", "RandomSpanInfillingLight"}};
      for (const auto& n : names)
        if (set == n[0]) return data_dir + "/HumanEval-" + n[1] + ".jsonl.gz";
      GRANITE_FAIL("unknown infilling set \"", set,
                   "\" (expected single-line, multi-line, random-span or random-span-light)");
    }
  }
  return "";
}

std::string check_program(CodeTask task, const CodeProblem& p, const std::string& completion) {
  switch (task) {
    case CodeTask::HumanEval:
      return p.prompt + completion + "\n" + p.test + "\n" + "check(" + p.entry_point + ")\n";
    case CodeTask::HumanEvalInfilling:
      return p.prompt + completion + p.suffix + "\n" + p.test + "\n" + "check(" + p.entry_point + ")\n";
    case CodeTask::MBPP:
      // test_setup_code builds objects of the solution's classes (tasks 367, 927: Node), so it follows the code.
      return p.prompt + completion + "\n" + p.setup + "\n" + p.test;
  }
  return "";
}

std::vector<std::string> stop_sequences(CodeTask task, PromptFormat format) {
  switch (task) {
    case CodeTask::HumanEval:
      return {"\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```"};
    case CodeTask::MBPP:
      if (format == PromptFormat::Instruct) return {};  // a free-text answer, up to end-of-text
      return {"\nclass", "\nassert", "\n\"\"\"", "\nprint", "\nif", "\n<|/", "\n```"};
    case CodeTask::HumanEvalInfilling:
      return {};
  }
  return {};
}

std::string truncate_at_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t cut = text.size();
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    const size_t at = text.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  return text.substr(0, cut);
}

std::string answer_prefix(CodeTask task, PromptFormat format, const CodeProblem& problem) {
  if (format == PromptFormat::Instruct && task == CodeTask::HumanEval) return problem.prompt;
  return "";
}

std::string extract_code(const std::string& answer) {
  const size_t open = answer.find("```");
  if (open == std::string::npos) return answer;
  const size_t body = answer.find('\n', open);  // skip the fence's language tag
  if (body == std::string::npos) return answer;
  const size_t close = answer.find("```", body + 1);
  return answer.substr(body + 1, close == std::string::npos ? std::string::npos : close - body - 1);
}

}  // namespace granite
