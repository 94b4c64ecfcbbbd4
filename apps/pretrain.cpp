// granite-pretrain: Granite Code pretraining from a JSON config (configs/train/), resumable, on CPU or GPUs.
//   granite-pretrain --config configs/train/tiny-pretrain.json [--set train.steps=200 ...] [--data DIR]
//                    [--output-dir DIR] [--max-steps N] [--save-every N] [--seed N] [--resume auto|never|PATH]
// Flags override the config (a flag is a --set with a name); --data replaces the data sources by one directory.
// Data parallel when started by granite-launch, torchrun or srun (granite/dist/launch_env.h): one process per
// device, the config's batch per rank.
#include <CLI/CLI.hpp>

#include "cli.h"
#include "granite/dist/communicator.h"
#include "granite/train/training_run.h"

int main(int argc, char** argv) {
  CLI::App app{"Pretrain a Granite Code model (two-phase recipe: see configs/train/)."};
  std::string config, data, output_dir, resume = "auto";
  std::vector<std::string> sets;
  int64_t max_steps = -1, save_every = -1, seed = -1;
  bool quiet = false;
  double dist_timeout_s = 600;
  app.add_option("--config", config, "training config (JSON)")->required();
  app.add_option("--set", sets, "override a config value: key.sub=value (repeatable)");
  app.add_option("--data", data, "prepared token shards (granite-data prepare output): the only data source");
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
  CLI11_PARSE(app, argc, argv);
  return granite::cli::guarded_main("granite-pretrain", [&] {
    if (max_steps >= 0) sets.push_back("train.steps=" + std::to_string(max_steps));
    if (save_every >= 0) sets.push_back("checkpoint.save_every=" + std::to_string(save_every));
    if (seed >= 0) {
      sets.push_back("train.seed=" + std::to_string(seed));
      sets.push_back("data.seed=" + std::to_string(seed));
    }
    granite::TrainConfig cfg = granite::load_train_config(config, sets);
    // Command-line paths are relative to the working directory, not to the config file.
    if (!data.empty()) cfg.data.sources = {{"data", {data}, 1.0}};
    if (!output_dir.empty()) cfg.output_dir = output_dir;
    granite::RunOptions options;
    options.resume = resume;
    options.progress = !quiet;
    const granite::LaunchEnv env = granite::launch_env();
    std::unique_ptr<granite::Communicator> comm;
    if (env.source != "single") {  // started by a launcher: the distributed path, even with one rank
      comm = std::make_unique<granite::Communicator>(
          env, granite::rank_device(cfg.device, env), std::chrono::milliseconds(int64_t(dist_timeout_s * 1000)));
      options.comm = comm.get();
    }
    const granite::RunResult r = granite::run_training(cfg, options);
    if (env.rank != 0) return 0;  // rank 0 reports for the job
    std::printf("%s\n", granite::Json{{"step", r.step},
                                       {"loss", r.last_loss},
                                       {"checkpoint", r.checkpoint},
                                       {"interrupted", r.interrupted},
                                       {"skipped_steps", r.skipped_steps}}
                           .dump()
                           .c_str());
    return 0;
  }, granite::cli::describe_torch_error);
}
