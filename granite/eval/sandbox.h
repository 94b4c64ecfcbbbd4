#pragma once
// Runs one untrusted program (a model's completion plus its tests) in a throwaway, resource-limited child process, so
// the evaluator survives programs that hang, crash, fork-bomb, eat memory, fill the disk or print without end.
//
// Shape of one run (sandbox.cpp):
//   fork -> child: new session/process group; where the kernel lets us, fresh network + mount namespaces (no network,
//   a private size-limited tmpfs on /tmp, /var/tmp, /dev/shm and /run/lock, the new /tmp holding the working
//   directory, so files written "outside" vanish with the run); when running as root, drop to a dedicated
//   unprivileged uid/gid (so RLIMIT_NPROC applies and nothing the user owns is writable); rlimits (CPU, address space,
//   file size, processes, no core); stdin /dev/null; a minimal environment; exec.
//   parent: drains stdout/stderr (keeping at most `max_output_bytes` of each), kills the whole process group at the
//   wall-clock deadline, and after the exit kills everything left (the group, and when it had a uid of its own every
//   process of that uid), then removes the working directory.
// What isolation was actually applied is reported per run, never silently assumed: a container without
// CAP_SYS_ADMIN gets the rlimits and the uid drop but no namespaces. Without root there is no uid of its own either:
// the program runs as the evaluator's user, in a scratch directory under scratch_root, with RLIMIT_NPROC at that
// user's current task count plus max_processes; its process group is killed, but a process that leaves the group
// (setsid) can outlive the run, and world-writable directories are shared with the machine.
#include <cstdint>
#include <string>
#include <vector>

namespace granite {

struct SandboxLimits {
  double timeout_s = 10.0;                      // wall clock; the process group is SIGKILLed after it
  int64_t memory_bytes = int64_t(2) << 30;      // RLIMIT_AS
  int64_t file_size_bytes = int64_t(16) << 20;  // RLIMIT_FSIZE (and the tmpfs size when namespaces are available)
  int64_t max_processes = 64;                   // RLIMIT_NPROC, counted for the sandbox's own uid
  int64_t max_open_files = 256;                 // RLIMIT_NOFILE
  int64_t max_output_bytes = 64 << 10;          // of stdout and of stderr each kept; the rest is read and dropped
};

struct SandboxOptions {
  SandboxLimits limits;
  // Where throwaway working directories are made when no private /tmp can be mounted ("" = $TMPDIR or /tmp).
  std::string scratch_root;
  // When running as root: the uid/gid the program runs as. Concurrent runs must use different uids (the evaluator
  // gives each worker slot its own: base_uid + slot), so that killing "every process of this uid" is exact -- and
  // never a uid anything else runs as (not 65534 "nobody", which daemons use): after each run every process of it
  // is killed. Root's 0 is refused.
  uint32_t uid = 60999, gid = 60999;
  bool isolate_network = true;  // try a fresh network namespace
  bool isolate_filesystem = true;  // try a mount namespace with private tmpfs scratch (size 4 x file_size_bytes)
};

enum class SandboxStatus {
  Exited,    // ran to completion; see exit_code (0 = the tests passed)
  Signaled,  // killed by a signal it raised or a limit it hit (SIGSEGV, SIGXCPU, SIGXFSZ, SIGKILL by OOM ...)
  TimedOut,  // still running at the deadline; the group was killed
  SetupFailed  // the sandbox itself could not start the program (see error)
};

struct SandboxResult {
  SandboxStatus status = SandboxStatus::SetupFailed;
  int exit_code = -1;  // for Exited
  int signal = 0;      // for Signaled
  double seconds = 0;  // wall clock
  std::string stdout_text, stderr_text;  // truncated to max_output_bytes each
  bool stdout_truncated = false, stderr_truncated = false;
  std::string error;  // SetupFailed: what went wrong
  // What was applied: network namespace, mount namespace (private tmpfs), uid drop.
  bool network_isolated = false, filesystem_isolated = false, uid_dropped = false;

  bool passed() const { return status == SandboxStatus::Exited && exit_code == 0; }
  // "passed", "failed: exit 1", "timed out", "signal 9 (Killed)", "setup failed: ..." -- the per-program verdict.
  std::string describe() const;
};

// Runs `argv` (argv[0] a path, or a name looked up in the sandbox's PATH /usr/local/bin:/usr/bin:/bin) in the
// sandbox; `files` are written into the fresh working directory first (name -> contents; names are plain file
// names), which is the program's cwd, $HOME and $TMPDIR. Whatever goes wrong with the program, including its failing
// to start, is in the result; granite::Error is thrown only for bad arguments and when the evaluator itself cannot
// set a run up (no scratch directory, pipe or fork).
// Thread-safe: concurrent calls are independent (give each its own uid when root).
SandboxResult run_sandboxed(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            const SandboxOptions& options = {});

// The Python interpreter the evaluator runs programs with: $GRANITE_PYTHON, else /usr/bin/python3, else python3 on
// PATH; throws granite::Error naming what was tried when there is none.
std::string find_python();

}  // namespace granite
