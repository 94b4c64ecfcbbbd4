// granite-launch: one process per local device with torchrun's environment, no Python needed.
//   granite-launch --nproc-per-node 8 -- granite-pretrain --config configs/train/granite-3b-code-phase1.json
//   granite-launch --nnodes 2 --node-rank 0 --master-addr node01 --master-port 29500 --nproc-per-node 8 -- ...
// Exit status: 0 when every rank succeeded, else the first failing rank's (the others are stopped).
#include <CLI/CLI.hpp>

#include "cli_basic.h"
#include "granite/dist/launcher.h"

int main(int argc, char** argv) {
  CLI::App app{"Run a program as N data-parallel ranks on this machine (torchrun-compatible environment)."};
  granite::LaunchOptions o;
  app.add_option("--nproc-per-node", o.nproc_per_node, "processes on this node (one per GPU)")->required();
  app.add_option("--nnodes", o.nnodes, "nodes in the job")->capture_default_str();
  app.add_option("--node-rank", o.node_rank, "this node's index")->capture_default_str();
  app.add_option("--master-addr", o.master_addr, "address of rank 0's node")->capture_default_str();
  app.add_option("--master-port", o.master_port, "rendezvous port (default: a free port, single node)");
  app.add_option("--grace", o.grace_s, "seconds between SIGTERM and SIGKILL when stopping ranks")
      ->capture_default_str();
  app.add_option("command", o.command, "the program and its arguments (after --)")->required();
  CLI11_PARSE(app, argc, argv);
  return granite::cli::guarded_main("granite-launch", [&] { return granite::launch_local(o); });
}
