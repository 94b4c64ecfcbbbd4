#pragma once
// The flags both training programs (granite-pretrain, granite-sft) share, and how they become config overrides and
// run options: one definition, so the two apps cannot drift apart.
#include <CLI/CLI.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/train/training_run.h"

namespace granite::cli {

struct RunFlags {
  std::vector<std::string> sets;
  std::string output_dir, resume = "auto";
  int64_t max_steps = -1, save_every = -1, seed = -1;
  bool quiet = false;
  double dist_timeout_s = 600;

  void add_to(CLI::App& app) {
    app.add_option("--set", sets, "override a config value: key.sub=value (repeatable)");
    app.add_option("--output-dir", output_dir, "where checkpoints, metrics.jsonl and tensorboard/ go");
    app.add_option("--max-steps", max_steps, "train.steps");
    app.add_option("--save-every", save_every, "checkpoint.save_every (0: only at the end)");
    app.add_option("--seed", seed, "train.seed (model initialisation) and data.seed");
    app.add_option("--resume", resume, "auto (latest checkpoint in --output-dir), never, or a checkpoint directory")
        ->capture_default_str();
    app.add_flag("--quiet", quiet, "no progress line");
    app.add_option("--dist-timeout", dist_timeout_s,
                   "seconds a rank waits for the others (rendezvous, collectives) before stopping with an error")
        ->capture_default_str();
  }

  // --set overrides plus the named flags that are overrides too.
  std::vector<std::string> overrides() const {
    std::vector<std::string> out = sets;
    if (max_steps >= 0) out.push_back("train.steps=" + std::to_string(max_steps));
    if (save_every >= 0) out.push_back("checkpoint.save_every=" + std::to_string(save_every));
    if (seed >= 0) {
      out.push_back("train.seed=" + std::to_string(seed));
      out.push_back("data.seed=" + std::to_string(seed));
    }
    return out;
  }

  // The process group when a launcher (granite-launch, torchrun, srun) started this process -- the distributed
  // path even with one rank -- else nullptr.
  std::unique_ptr<Communicator> communicator(const LaunchEnv& env, const std::string& device) const {
    if (env.source == "single") return nullptr;
    return std::make_unique<Communicator>(env, rank_device(device, env),
                                          std::chrono::milliseconds(int64_t(dist_timeout_s * 1000)));
  }

  RunOptions options(Communicator* comm) const {
    RunOptions o;
    o.resume = resume;
    o.progress = !quiet;
    o.comm = comm;
    return o;
  }
};

// The one-line JSON summary rank 0 prints when a run ends.
inline std::string run_summary(const RunResult& r) {
  return Json{{"step", r.step},
              {"loss", r.last_loss},
              {"checkpoint", r.checkpoint},
              {"interrupted", r.interrupted},
              {"skipped_steps", r.skipped_steps}}
      .dump();
}

}  // namespace granite::cli
