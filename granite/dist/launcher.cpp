#include "granite/dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "granite/core/check.h"

namespace granite {

namespace {

std::atomic<int> g_forward_signal{0};
extern "C" void on_launcher_signal(int sig) { g_forward_signal.store(sig); }

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  GRANITE_CHECK(fd >= 0, "cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  GRANITE_CHECK(ok, "cannot find a free TCP port: ", std::strerror(err));
  return ntohs(addr.sin_port);
}

int launch_local(const LaunchOptions& o) {
  GRANITE_CHECK(!o.command.empty(), "granite-launch: no program to run (granite-launch [options] -- PROGRAM ARGS)");
  GRANITE_CHECK(o.nproc_per_node >= 1, "--nproc-per-node must be >= 1, got ", o.nproc_per_node);
  GRANITE_CHECK(o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank ", o.node_rank,
                " must be in [0, --nnodes ", o.nnodes, ")");
  GRANITE_CHECK(o.master_port != 0 || o.nnodes == 1, "--master-port is required with several nodes");
  const int port = o.master_port != 0 ? o.master_port : free_tcp_port();
  const int world = o.nnodes * o.nproc_per_node;

  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  g_forward_signal = 0;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids;
  for (int local = 0; local < o.nproc_per_node; ++local) {
    const int rank = o.node_rank * o.nproc_per_node + local;
    const pid_t pid = ::fork();
    GRANITE_CHECK(pid >= 0, "granite-launch: fork failed: ", std::strerror(errno));
    if (pid == 0) {
      ::setpgid(0, 0);  // each rank leads a process group: signals reach what it started too (a wrapper script)
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      auto set = [](const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); };
      set("RANK", std::to_string(rank));
      set("LOCAL_RANK", std::to_string(local));
      set("WORLD_SIZE", std::to_string(world));
      set("LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node));
      set("GROUP_RANK", std::to_string(o.node_rank));
      set("MASTER_ADDR", o.master_addr);
      set("MASTER_PORT", std::to_string(port));
      std::vector<char*> argv;
      for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "granite-launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here, so that no signal can come before the child did it
    pids.push_back(pid);
  }

  int first_failure = 0;
  size_t running = pids.size();
  std::chrono::steady_clock::time_point kill_at{};
  bool terminating = false;
  auto signal_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(-p, sig);  // the rank's process group
  };
  while (running > 0) {
    if (const int sig = g_forward_signal.exchange(0)) {
      signal_all(sig);
      if (!terminating) {
        terminating = true;
        kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(o.grace_s * 1000));
      }
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] != done) continue;
        pids[i] = -1;
        --running;
        const int code = exit_status(status);
        const int rank = o.node_rank * o.nproc_per_node + int(i);
        if (code != 0 && first_failure == 0) {
          first_failure = code;
          std::fprintf(stderr, "granite-launch: rank %d (pid %d) exited with status %d; stopping the other ranks\n",
                       rank, int(done), code);
          if (!terminating) {
            signal_all(SIGTERM);
            terminating = true;
            kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(o.grace_s * 1000));
          }
        }
      }
      continue;
    }
    if (terminating && std::chrono::steady_clock::now() >= kill_at) {
      signal_all(SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return first_failure;
}

}  // namespace granite
