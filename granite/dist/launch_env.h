#pragma once
// Who this process is in a distributed job, read from the environment the way torchrun and Slurm set it:
//   torchrun (and granite-launch): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
//   Slurm (srun, one task per GPU):  SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE (or
//                                    SLURM_STEP_TASKS_PER_NODE), the first host of SLURM_STEP_NODELIST /
//                                    SLURM_NODELIST as the master (MASTER_ADDR wins when set), and MASTER_PORT or
//                                    10000 + SLURM_JOB_ID % 20000 (PyTorch Lightning's rule, so every task agrees)
//   neither: one process.
// torchrun's variables win when both are present (torchrun inside an allocation). Every error names the variable
// and its value. LibTorch-free.
#include <functional>
#include <string>

namespace granite {

struct LaunchEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // "torchrun" | "slurm" | "single"
  bool distributed() const { return world_size > 1; }
};

// `getenv` returns nullptr for an unset variable (tests pass a map; launch_env() the process environment).
LaunchEnv launch_env_from(const std::function<const char*(const std::string&)>& getenv);
LaunchEnv launch_env();

// "node[01-04,07],gpu3" -> "node01"; "a,b" -> "a" (Slurm's compressed host list, first entry).
std::string first_slurm_host(const std::string& nodelist);

}  // namespace granite
