#include "granite/eval/code_eval.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "granite/core/check.h"
#include "granite/core/thread_pool.h"
#include "granite/eval/pass_at_k.h"

namespace granite {

namespace {

constexpr size_t kStderrTail = 1000;

// Gives each running program a uid of [base, base + count) that no other running program has, going round the range
// so that a uid is reused as late as possible (its previous program's zombies long reaped).
class UidRing {
 public:
  UidRing(uint32_t base, uint32_t count) : base_(base), count_(count) {}
  uint32_t acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (true) {  // terminates: fewer programs run at once than there are uids
      const uint32_t uid = base_ + uint32_t(next_++ % count_);
      if (busy_.insert(uid).second) return uid;
    }
  }
  void release(uint32_t uid) {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_.erase(uid);
  }

 private:
  std::mutex mutex_;
  std::set<uint32_t> busy_;
  uint32_t base_, count_;
  uint64_t next_ = 0;
};

}  // namespace

uint32_t default_sandbox_base_uid() {
  return (uint32_t(1) << 30) + (uint32_t(getpid()) % (uint32_t(1) << 18)) * 4096u;
}

int64_t ProblemResult::correct() const {
  return std::count_if(samples.begin(), samples.end(), [](const SampleVerdict& s) { return s.passed; });
}

std::vector<ProblemResult> check_completions(CodeTask task, const std::vector<CodeProblem>& problems,
                                             const std::vector<std::vector<std::string>>& completions,
                                             const CodeEvalOptions& options,
                                             const std::function<void(int64_t, int64_t)>& on_done) {
  GRANITE_CHECK(problems.size() == completions.size(), "check_completions: ", completions.size(),
                " completion lists for ", problems.size(), " problems");
  const std::string python = options.python.empty() ? find_python() : options.python;
  std::vector<ProblemResult> results(problems.size());
  std::vector<std::pair<size_t, size_t>> runs;  // (problem, sample)
  for (size_t i = 0; i < problems.size(); ++i) {
    results[i].task_id = problems[i].task_id;
    results[i].samples.resize(completions[i].size());
    for (size_t s = 0; s < completions[i].size(); ++s) runs.emplace_back(i, s);
  }
  const int jobs = options.jobs > 0 ? options.jobs : std::max(1, int(std::thread::hardware_concurrency()));
  ThreadPool pool(jobs);
  GRANITE_CHECK(options.uid_count > uint32_t(pool.threads()), "uid_count (", options.uid_count,
                ") must exceed the programs run at once (", pool.threads(), ")");
  GRANITE_CHECK(options.base_uid != 0 || options.uid_count <= 4096, "uid_count (", options.uid_count,
                ") above 4096 needs an explicit base_uid");
  UidRing uids(options.base_uid != 0 ? options.base_uid : default_sandbox_base_uid(), options.uid_count);
  std::atomic<int64_t> done{0};
  std::mutex progress_mutex;
  pool.parallel_for(int64_t(runs.size()), [&](int64_t r) {
    const auto [i, s] = runs[size_t(r)];
    const std::string& completion = completions[i][s];
    SandboxOptions sandbox = options.sandbox;
    sandbox.uid = sandbox.gid = uids.acquire();
    SandboxResult run;
    try {
      run = run_sandboxed({python, "program.py"}, {{"program.py", check_program(task, problems[i], completion)}},
                          sandbox);
    } catch (...) {
      uids.release(sandbox.uid);
      throw;
    }
    uids.release(sandbox.uid);
    SampleVerdict& v = results[i].samples[s];
    v.completion = completion;
    v.passed = run.passed();
    v.result = run.describe();
    v.seconds = run.seconds;
    if (!v.passed) {
      const std::string& err = run.stderr_text;
      v.stderr_tail = err.size() > kStderrTail ? err.substr(err.size() - kStderrTail) : err;
    }
    v.network_isolated = run.network_isolated;
    v.filesystem_isolated = run.filesystem_isolated;
    v.uid_dropped = run.uid_dropped;
    const int64_t n = ++done;
    if (on_done) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      on_done(n, int64_t(runs.size()));
    }
  });
  return results;
}

CodeEvalSummary summarize(const std::vector<ProblemResult>& results) {
  CodeEvalSummary summary;
  summary.total = int64_t(results.size());
  std::vector<int64_t> n, c;
  int64_t min_samples = INT64_MAX;
  for (const ProblemResult& r : results) {
    GRANITE_CHECK(!r.samples.empty(), "problem ", r.task_id, " has no samples");
    n.push_back(int64_t(r.samples.size()));
    c.push_back(r.correct());
    min_samples = std::min(min_samples, n.back());
    if (r.samples.front().passed) ++summary.passed;
    for (const SampleVerdict& v : r.samples) {
      summary.network_isolated &= v.network_isolated;
      summary.filesystem_isolated &= v.filesystem_isolated;
      summary.uid_dropped &= v.uid_dropped;
    }
  }
  if (results.empty()) return summary;
  for (int64_t k : {1, 10, 100})
    if (k <= min_samples) summary.pass_at.emplace_back(k, mean_pass_at_k(n, c, k));
  return summary;
}

Json to_json(const ProblemResult& r) {
  Json samples = Json::array();
  for (const SampleVerdict& v : r.samples) {
    Json s = {{"completion", v.completion}, {"passed", v.passed}, {"result", v.result}, {"seconds", v.seconds}};
    if (!v.passed) s["stderr"] = v.stderr_tail;
    samples.push_back(std::move(s));
  }
  return Json{{"task_id", r.task_id}, {"n", r.samples.size()}, {"correct", r.correct()}, {"samples", samples}};
}

}  // namespace granite
