// granite-pretrain: Granite Code pretraining from a JSON config (configs/train/), resumable, on CPU or GPUs.
//   granite-pretrain --config configs/train/tiny-pretrain.json [--set train.steps=200 ...] [--data DIR]
//                    [--output-dir DIR] [--max-steps N] [--save-every N] [--seed N] [--resume auto|never|PATH]
// Flags override the config (a flag is a --set with a name); --data replaces the data sources by one directory.
// Data parallel when started by granite-launch, torchrun or srun (granite/dist/launch_env.h): one process per
// device, the config's batch per rank.
#include <CLI/CLI.hpp>

#include "cli.h"
#include "run_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"Pretrain a Granite Code model (two-phase recipe: see configs/train/)."};
  std::string config, data;
  granite::cli::RunFlags flags;
  app.add_option("--config", config, "training config (JSON)")->required();
  app.add_option("--data", data, "prepared token shards (granite-data prepare output): the only data source");
  flags.add_to(app);
  CLI11_PARSE(app, argc, argv);
  return granite::cli::guarded_main("granite-pretrain", [&] {
    granite::TrainConfig cfg = granite::load_train_config(config, flags.overrides());
    // Command-line paths are relative to the working directory, not to the config file.
    if (!data.empty()) cfg.data.sources = {{"data", {data}, 1.0}};
    if (!flags.output_dir.empty()) cfg.output_dir = flags.output_dir;
    const granite::LaunchEnv env = granite::launch_env();
    const auto comm = flags.communicator(env, cfg.device);
    const granite::RunResult r = granite::run_training(cfg, flags.options(comm.get()));
    if (env.rank == 0) std::printf("%s\n", granite::cli::run_summary(r).c_str());  // rank 0 reports for the job
    return 0;
  }, granite::cli::describe_torch_error);
}
