#pragma once
// Functional correctness of completions: every (problem, sample) program runs in its own sandbox
// (granite/eval/sandbox.h), several at once, and the verdicts become pass@k (granite/eval/pass_at_k.h) and one
// JSON record per problem.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "granite/core/json.h"
#include "granite/eval/code_tasks.h"
#include "granite/eval/sandbox.h"

namespace granite {

struct CodeEvalOptions {
  SandboxOptions sandbox;     // limits and isolation of each program (its uid/gid are set per program, below)
  // When root: programs run as uids/gids of [base_uid, base_uid + uid_count), taken round the range. A uid of its
  // own for every program in flight (so "kill every process of this uid" is exact), reused as late as possible: the
  // killed leftovers of a fork bomb stay zombies until init reaps them, and would count against the next program's
  // RLIMIT_NPROC on the same uid.
  // base_uid 0 = this process's own block, 2^30 + (pid mod 2^18) * 4096, so evaluators running side by side on one
  // machine never share a uid (their pids would have to agree modulo 2^18).
  uint32_t base_uid = 0;
  uint32_t uid_count = 4096;
  int jobs = 0;               // programs run at once; <= 0: the hardware concurrency
  std::string python;         // interpreter; "" = find_python()
};

struct SampleVerdict {
  std::string completion;
  bool passed = false;
  std::string result;  // SandboxResult::describe()
  double seconds = 0;
  std::string stderr_tail;  // the end of stderr for a failure (why it failed)
  bool network_isolated = false, filesystem_isolated = false, uid_dropped = false;  // as SandboxResult's
};

struct ProblemResult {
  std::string task_id;
  std::vector<SampleVerdict> samples;
  int64_t correct() const;
};

// completions[i] holds the samples of problems[i]. `on_done(done, total)` reports progress (may be null).
std::vector<ProblemResult> check_completions(CodeTask task, const std::vector<CodeProblem>& problems,
                                             const std::vector<std::vector<std::string>>& completions,
                                             const CodeEvalOptions& options,
                                             const std::function<void(int64_t, int64_t)>& on_done = nullptr);

struct CodeEvalSummary {
  int64_t total = 0;   // problems
  int64_t passed = 0;  // problems whose first sample passed (the greedy pass@1 count)
  std::vector<std::pair<int64_t, double>> pass_at;  // (k, pass@k) for k in {1, 10, 100} not above every n
  // Whether each isolation layer held for every program (false if any run lacked it).
  bool network_isolated = true, filesystem_isolated = true, uid_dropped = true;
};
// The uid block base_uid = 0 stands for (2^30 + (pid mod 2^18) * 4096): [2^30, 2^31) holds every block.
uint32_t default_sandbox_base_uid();

CodeEvalSummary summarize(const std::vector<ProblemResult>& results);

Json to_json(const ProblemResult& result);

}  // namespace granite
