#pragma once
// granite-launch's engine: start one process per local device with the torchrun environment
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), like
// `torchrun --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] PROGRAM ARGS`, without
// Python. Each rank runs in its own process group. When a rank fails the others' groups get SIGTERM (so they save
// and stop), then SIGKILL after a grace period; SIGINT/SIGTERM to the launcher are passed on the same way.
// LibTorch-free.
#include <string>
#include <vector>

namespace granite {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1, node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;            // 0: a free port of this machine (single node only)
  double grace_s = 30;            // between SIGTERM and SIGKILL for the survivors of a failure
  std::vector<std::string> command;
};

// Returns the job's exit status: 0 when every process exited 0, else the first failure's (128 + signal for a
// process killed by a signal).
int launch_local(const LaunchOptions& options);

// A TCP port that was free a moment ago (bind to port 0 and read it back).
int free_tcp_port();

}  // namespace granite
