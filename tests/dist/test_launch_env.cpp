// Who a process is in a distributed job: torchrun's variables, Slurm's (with its compressed node lists), a single
// process when neither is set, and clear errors naming the variable for bad values.
#include <catch2/catch.hpp>

#include <map>

#include "granite/dist/launch_env.h"

using Catch::Matchers::Contains;

namespace {

granite::LaunchEnv from(const std::map<std::string, std::string>& vars) {
  return granite::launch_env_from([&](const std::string& name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

}  // namespace

TEST_CASE("torchrun's environment names the rank, the world and the rendezvous", "[dist][launch]") {
  const auto e = from({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "4"},
                       {"MASTER_ADDR", "node07"}, {"MASTER_PORT", "29611"}});
  CHECK(e.source == "torchrun");
  CHECK(e.distributed());
  CHECK(e.rank == 5);
  CHECK(e.world_size == 8);
  CHECK(e.local_rank == 1);
  CHECK(e.local_world_size == 4);
  CHECK(e.master_addr == "node07");
  CHECK(e.master_port == 29611);
  // Also Slurm variables present: torchrun's win.
  CHECK(from({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}}).source == "torchrun");
}

TEST_CASE("without launcher variables the process is alone", "[dist][launch]") {
  const auto e = from({});
  CHECK(e.source == "single");
  CHECK_FALSE(e.distributed());
  CHECK(e.rank == 0);
  CHECK(e.world_size == 1);
}

TEST_CASE("Slurm's environment: rank, tasks, local id, master from the node list, port from the job id",
          "[dist][launch]") {
  const auto e = from({{"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"},
                       {"SLURM_NTASKS_PER_NODE", "8(x2)"}, {"SLURM_NODELIST", "gpu[017-018]"},
                       {"SLURM_JOB_ID", "123456"}});
  CHECK(e.source == "slurm");
  CHECK(e.rank == 9);
  CHECK(e.world_size == 16);
  CHECK(e.local_rank == 1);
  CHECK(e.local_world_size == 8);
  CHECK(e.master_addr == "gpu017");
  CHECK(e.master_port == 10000 + 123456 % 20000);
  const auto explicit_master = from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"MASTER_ADDR", "10.0.0.1"},
                                     {"MASTER_PORT", "4000"}, {"SLURM_NODELIST", "a,b"}});
  CHECK(explicit_master.master_addr == "10.0.0.1");
  CHECK(explicit_master.master_port == 4000);
  CHECK(granite::first_slurm_host("node[01-04,07],gpu3") == "node01");
  CHECK(granite::first_slurm_host("a,b") == "a");
  CHECK(granite::first_slurm_host("rack1-n[5,9]-ib") == "rack1-n5-ib");
}

TEST_CASE("bad launcher variables are errors naming the variable and value", "[dist][launch]") {
  CHECK_THROWS_WITH(from({{"WORLD_SIZE", "two"}, {"RANK", "0"}}), Contains("WORLD_SIZE=\"two\""));
  CHECK_THROWS_WITH(from({{"WORLD_SIZE", "2"}, {"RANK", "2"}}), Contains("RANK=2") && Contains("WORLD_SIZE=2"));
  CHECK_THROWS_WITH(from({{"WORLD_SIZE", "2"}}), Contains("RANK") && Contains("not set"));
  CHECK_THROWS_WITH(from({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "70000"}}),
                    Contains("MASTER_PORT=70000"));
  CHECK_THROWS_WITH(from({{"WORLD_SIZE", "4"}, {"RANK", "1"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}),
                    Contains("LOCAL_RANK=2"));
  CHECK_THROWS_WITH(from({{"SLURM_PROCID", "-1"}, {"SLURM_NTASKS", "2"}}), Contains("SLURM_PROCID=\"-1\""));
}
