#include "granite/dist/launch_env.h"

#include <cstdlib>

#include "granite/core/check.h"
#include "granite/core/strings.h"

namespace granite {

namespace {

using Getenv = std::function<const char*(const std::string&)>;

// A non-negative integer variable; `fallback` when unset.
int int_var(const Getenv& getenv, const std::string& name, int fallback, bool required = false) {
  const char* text = getenv(name);
  if (!text) {
    GRANITE_CHECK(!required, "environment variable ", name, " is not set");
    return fallback;
  }
  const std::string s(text);
  size_t used = 0;
  const int64_t value = leading_integer(s, used);
  GRANITE_CHECK(used == s.size() && !s.empty() && value >= 0 && value <= 1 << 30, "environment variable ", name,
                "=\"", s, "\" is not a non-negative integer");
  return int(value);
}

std::string str_var(const Getenv& getenv, const std::string& name, const std::string& fallback) {
  const char* text = getenv(name);
  return text && *text ? std::string(text) : fallback;
}

// SLURM_NTASKS_PER_NODE / SLURM_STEP_TASKS_PER_NODE look like "4" or "4(x2)" or "4(x2),3": this node's count is
// not knowable from the string alone when they differ, so the first entry is taken (homogeneous jobs).
int tasks_per_node(const std::string& name, const std::string& text) {
  size_t used = 0;
  const int64_t value = leading_integer(text, used);
  GRANITE_CHECK(used > 0 && value >= 1, "environment variable ", name, "=\"", text, "\" is not a task count");
  return int(value);
}

void validate(const LaunchEnv& e, const std::string& rank_var, const std::string& world_var,
              const std::string& local_var) {
  GRANITE_CHECK(e.world_size >= 1, world_var, "=", e.world_size, ": the world size must be at least 1");
  GRANITE_CHECK(e.rank < e.world_size, rank_var, "=", e.rank, " is not below ", world_var, "=", e.world_size);
  GRANITE_CHECK(e.local_world_size >= 1 && e.local_world_size <= e.world_size, "the local world size ",
                e.local_world_size, " must be in [1, ", e.world_size, "]");
  GRANITE_CHECK(e.local_rank < e.local_world_size, local_var, "=", e.local_rank, " is not below the local world size ",
                e.local_world_size);
  GRANITE_CHECK(e.master_port >= 1 && e.master_port <= 65535, "MASTER_PORT=", e.master_port, " is not a TCP port");
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Up to the first comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  // prefix[01-04,07]suffix -> prefix01suffix
  const size_t close = first.find(']', open);
  GRANITE_CHECK(close != std::string::npos, "Slurm node list \"", nodelist, "\" has an unclosed '['");
  std::string range = first.substr(open + 1, close - open - 1);
  range = range.substr(0, range.find_first_of(",-"));
  return first.substr(0, open) + range + first.substr(close + 1);
}

LaunchEnv launch_env_from(const Getenv& getenv) {
  LaunchEnv e;
  if (getenv("WORLD_SIZE")) {
    e.source = "torchrun";
    e.world_size = int_var(getenv, "WORLD_SIZE", 1);
    e.rank = int_var(getenv, "RANK", 0, /*required=*/e.world_size > 1);
    e.local_rank = int_var(getenv, "LOCAL_RANK", e.rank);
    e.local_world_size = int_var(getenv, "LOCAL_WORLD_SIZE", e.world_size);
    e.master_addr = str_var(getenv, "MASTER_ADDR", e.master_addr);
    e.master_port = int_var(getenv, "MASTER_PORT", e.master_port);
    validate(e, "RANK", "WORLD_SIZE", "LOCAL_RANK");
    return e;
  }
  if (getenv("SLURM_PROCID") && getenv("SLURM_NTASKS")) {
    e.source = "slurm";
    e.world_size = int_var(getenv, "SLURM_NTASKS", 1);
    e.rank = int_var(getenv, "SLURM_PROCID", 0);
    e.local_rank = int_var(getenv, "SLURM_LOCALID", 0);
    const char* per_node = getenv("SLURM_NTASKS_PER_NODE");
    const std::string per_node_var = per_node ? "SLURM_NTASKS_PER_NODE" : "SLURM_STEP_TASKS_PER_NODE";
    if (!per_node) per_node = getenv("SLURM_STEP_TASKS_PER_NODE");
    e.local_world_size = per_node ? tasks_per_node(per_node_var, per_node) : e.world_size;
    const std::string nodes = str_var(getenv, "SLURM_STEP_NODELIST", str_var(getenv, "SLURM_NODELIST", ""));
    e.master_addr = str_var(getenv, "MASTER_ADDR", nodes.empty() ? e.master_addr : first_slurm_host(nodes));
    e.master_port = int_var(getenv, "MASTER_PORT", 10000 + int_var(getenv, "SLURM_JOB_ID", 0) % 20000);
    validate(e, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID");
    return e;
  }
  return e;
}

LaunchEnv launch_env() {
  return launch_env_from([](const std::string& name) { return std::getenv(name.c_str()); });
}

}  // namespace granite
