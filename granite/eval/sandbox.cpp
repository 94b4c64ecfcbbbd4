#include "granite/eval/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "granite/core/check.h"
#include "granite/core/remove_tree.h"

// Shape of run_sandboxed (see sandbox.h for the why):
//   parent, before fork: validate; make the fallback working directory (used when no private /tmp can be mounted;
//     made every time, since only the child learns whether it gets a mount namespace) and write the files there;
//     build every string and array the child needs (argv, both environments, exec candidates, mount options,
//     rlimits), because between fork and exec the child of a multi-threaded process may only make async-signal-safe
//     calls (no malloc, no locks, no exceptions).
//   child: run_child() -- session, namespaces, private tmpfs, files, chown, chdir, stdio, uid drop, rlimits, exec; it
//     tells the parent what it applied (and why setup failed, if it did) over a CLOEXEC status pipe.
//   parent, after fork: supervise() -- drain stdout/stderr/status with poll() until the child has exited and the
//     pipes are drained (or a short grace is over), killing the group at the deadline and everything left after the
//     exit; then reap, decode, and remove the fallback directory.

namespace granite {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSandboxPath = "/usr/local/bin:/usr/bin:/bin";
// The working directory inside the private /tmp (the tmpfs is the run's own, so a fixed name cannot collide).
constexpr const char* kPrivateWorkDir = "/tmp/work";
// World-writable places that get a private tmpfs with a mount namespace; /tmp must succeed (it holds the working
// directory), and filesystem_isolated needs every one that exists.
constexpr const char* kPrivateMounts[] = {"/tmp", "/var/tmp", "/dev/shm", "/run/lock"};
constexpr int64_t kTmpfsInodes = 16384;  // bounds kernel memory spent on inodes (tmpfs `size` counts only data)
// After the child exited and its leftovers were killed, read what is still buffered in the pipes for at most this
// long: a writer that escaped every kill (non-root, setsid) must not keep the evaluator waiting.
constexpr auto kDrainGrace = std::chrono::milliseconds(200);
// Without pidfd_open (Linux < 5.3) the child's exit is noticed by polling this often.
constexpr auto kExitTick = std::chrono::milliseconds(10);
constexpr int kSweepRounds = 50;  // kill(-1) rounds per run when processes of the sandbox uid keep turning up
constexpr uint32_t kReportMagic = 0x67736278;  // "gsbx"

// ------------------------------------------------------------------------------------------------------------------
// The child's report, written in one write() (< PIPE_BUF, so atomic) right before exec, or on a setup failure.

struct ChildReport {
  uint32_t magic = kReportMagic;
  uint8_t network = 0, filesystem = 0, uid = 0;  // what was applied
  uint8_t failed = 0;                            // setup failed: see error_number and what
  uint8_t exec_failed = 0;                       // ... at the exec itself
  int32_t error_number = 0;
  char what[200] = {};
};

// ------------------------------------------------------------------------------------------------------------------
// File descriptors.

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` to a number >= 3 (CLOEXEC kept), so the child's dup2 onto 0/1/2 never meets itself even when the
// evaluator runs with a closed stdin/stdout/stderr.
void move_above_stdio(Fd& fd) {
  if (fd.get() >= 3) return;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  GRANITE_CHECK(moved >= 0, "sandbox: fcntl(F_DUPFD_CLOEXEC) failed: ", std::strerror(errno));
  fd.reset(moved);
}

// A CLOEXEC pipe: concurrent sandboxes of other threads must not carry it into their programs.
void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  GRANITE_CHECK(::pipe2(fds, O_CLOEXEC) == 0, "sandbox: pipe2 failed: ", std::strerror(errno));
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  move_above_stdio(read_end);
  move_above_stdio(write_end);
}

// Writes `size` bytes to a new file (never through a symlink); 0 or errno. Async-signal-safe.
int write_new_file(const char* path, const char* data, size_t size) {
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return err;
    }
    data += n;
    size -= size_t(n);
  }
  return ::close(fd) == 0 ? 0 : errno;
}

// ------------------------------------------------------------------------------------------------------------------
// /proc scans (parent only): who still runs as the sandbox uid, and how many tasks a uid has.

struct ProcessInfo {
  char state = '?';
  uid_t real = 0, effective = 0, saved = 0;
  int64_t threads = 1;
};

bool read_process_info(const char* pid, ProcessInfo& info) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%s/status", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // exited meanwhile
  char text[8192];
  size_t size = 0;
  while (size < sizeof text - 1) {
    const ssize_t n = ::read(fd, text + size, sizeof text - 1 - size);
    if (n <= 0) break;
    size += size_t(n);
  }
  ::close(fd);
  text[size] = '\0';
  const char* state = std::strstr(text, "\nState:");
  const char* uids = std::strstr(text, "\nUid:");
  const char* threads = std::strstr(text, "\nThreads:");
  if (!state || !uids) return false;
  std::sscanf(state + 7, " %c", &info.state);
  unsigned r = 0, e = 0, s = 0;
  if (std::sscanf(uids + 5, " %u %u %u", &r, &e, &s) != 3) return false;
  info.real = r, info.effective = e, info.saved = s;
  long long t = 1;
  if (threads && std::sscanf(threads + 9, " %lld", &t) == 1) info.threads = t;
  return true;
}

// Calls f(info) for every process in /proc.
template <typename F>
void for_each_process(F&& f) {
  DIR* dir = ::opendir("/proc");
  if (!dir) return;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    ProcessInfo info;
    if (read_process_info(entry->d_name, info)) f(info);
  }
  ::closedir(dir);
}

// A process of `uid` that can still run (zombies are dead; whether they are reaped is their parent's business --
// init's, for the orphans of a killed sandbox).
bool has_live_process_of(uid_t uid) {
  bool found = false;
  for_each_process([&](const ProcessInfo& p) {
    if (p.state != 'Z' && p.state != 'X' && (p.real == uid || p.effective == uid || p.saved == uid)) found = true;
  });
  return found;
}

// Tasks (threads included, zombies too: RLIMIT_NPROC counts them all) whose real uid is `uid`.
int64_t tasks_of(uid_t uid) {
  int64_t n = 0;
  for_each_process([&](const ProcessInfo& p) {
    if (p.real == uid) n += p.threads;
  });
  return n;
}

// Kills every process of `uid`, escaped ones (setsid, double fork) included: a helper becomes `uid` and sends
// kill(-1, SIGKILL), which reaches exactly the processes that uid may signal; repeated while /proc still shows one
// alive (a fork bomb can fork between the kernel's pass over the task list and its own death). Never done from this
// process itself: a thread running as `uid` even briefly could be signalled by the very programs being killed.
void kill_processes_of(uid_t uid) {
  for (int round = 0; round < kSweepRounds && has_live_process_of(uid); ++round) {
    if (round > 0) ::usleep(2000);  // SIGKILLed tasks take a moment to become zombies
    const pid_t helper = ::fork();
    if (helper == 0) {
      if (::syscall(SYS_setresuid, uid, uid, uid) == 0) ::kill(-1, SIGKILL);
      ::_exit(0);
    }
    if (helper < 0) return;  // out of processes: the group kill already happened; nothing better to do
    while (::waitpid(helper, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

// ------------------------------------------------------------------------------------------------------------------
// The fallback working directory: <root>/granite-sandbox-XXXXXX (root-owned, 0711) / work (the program's, 0700).
// The program owns only `work`, so it cannot rename the directory that cleanup removes.

std::string scratch_root(const SandboxOptions& options) {
  if (!options.scratch_root.empty()) return options.scratch_root;
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir && *tmpdir ? tmpdir : "/tmp";
}

class ScratchDir {
 public:
  ScratchDir(const std::string& root, const std::vector<std::pair<std::string, std::string>>& files) {
    std::string pattern = root + "/granite-sandbox-XXXXXX";
    GRANITE_CHECK(::mkdtemp(pattern.data()) != nullptr, "sandbox: cannot make a scratch directory under ", root,
                  ": ", std::strerror(errno));
    path_ = pattern;
    try {
      work_ = path_ + "/work";
      GRANITE_CHECK(::chmod(path_.c_str(), 0711) == 0 && ::mkdir(work_.c_str(), 0700) == 0, "sandbox: cannot set up ",
                    work_, ": ", std::strerror(errno));
      for (const auto& [name, contents] : files) {
        const std::string file = work_ + "/" + name;
        const int err = write_new_file(file.c_str(), contents.data(), contents.size());
        GRANITE_CHECK(err == 0, "sandbox: cannot write ", file, ": ", std::strerror(err));
      }
    } catch (...) {
      remove();
      throw;
    }
  }
  ~ScratchDir() { remove(); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& work() const { return work_; }

 private:
  // A directory that cannot be removed (a non-root program made part of it unreadable) is left behind rather than
  // losing the run's verdict.
  void remove() {
    try {
      remove_tree(path_);
    } catch (const Error&) {
    }
  }
  std::string path_, work_;
};

// ------------------------------------------------------------------------------------------------------------------
// Everything the child needs, built before fork.

struct Limit {
  int resource;
  const char* name;
  rlim_t value;
};

// One candidate working directory (private tmpfs or fallback) with its file paths and environment.
struct WorkPlace {
  std::string dir;
  std::vector<std::string> files;  // full paths, in the order of ChildPlan::contents
  std::vector<std::string> env_storage;
  std::vector<char*> env;

  void build(const std::string& directory, const std::vector<std::pair<std::string, std::string>>& named) {
    dir = directory;
    for (const auto& entry : named) files.push_back(dir + "/" + entry.first);
    env_storage = {std::string("PATH=") + kSandboxPath, "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"};
    for (std::string& s : env_storage) env.push_back(s.data());
    env.push_back(nullptr);
  }
};

struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> candidates;  // paths to execve, in order (argv[0] looked up in kSandboxPath)
  std::vector<const std::string*> contents;
  WorkPlace private_place, fallback_place;
  std::string tmpfs_options;
  bool isolate_network = false, isolate_filesystem = false;
  bool drop_uid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string uid_text, gid_text;  // for error messages (no number formatting after fork)
  std::vector<Limit> limits;
  int out_fd = -1, err_fd = -1, status_fd = -1;
};

std::vector<std::string> exec_candidates(const std::string& program) {
  if (program.find('/') != std::string::npos) return {program};
  std::vector<std::string> out;
  const std::string path = kSandboxPath;
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(path.substr(start, end - start) + "/" + program);
    start = end + 1;
  }
  return out;
}

std::vector<Limit> make_limits(const SandboxLimits& limits, bool drop_uid) {
  const auto cpu_seconds = rlim_t(std::ceil(limits.timeout_s)) + 1;
  std::vector<Limit> out = {
      {RLIMIT_AS, "RLIMIT_AS", rlim_t(limits.memory_bytes)},
      {RLIMIT_FSIZE, "RLIMIT_FSIZE", rlim_t(limits.file_size_bytes)},
      {RLIMIT_NOFILE, "RLIMIT_NOFILE", rlim_t(limits.max_open_files)},
      {RLIMIT_CORE, "RLIMIT_CORE", 0},
      {RLIMIT_CPU, "RLIMIT_CPU", cpu_seconds},  // SIGXCPU here, SIGKILL one second later (hard = soft + 1)
  };
  // RLIMIT_NPROC counts every task of the real uid, machine-wide. With a dedicated uid that is the sandbox alone.
  // Without root the program shares the evaluator's uid, whose tasks (this process's threads, the user's shell ...)
  // already count: a plain max_processes could make every fork fail, so the limit is "what the uid has now plus
  // max_processes" -- still a ceiling on a fork bomb, though shared with whatever else that uid starts meanwhile.
  const int64_t nproc = drop_uid ? limits.max_processes : tasks_of(::getuid()) + limits.max_processes;
  out.push_back({RLIMIT_NPROC, "RLIMIT_NPROC", rlim_t(nproc)});
  return out;
}

ChildPlan make_plan(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& files,
                    const SandboxOptions& options, const std::string& fallback_dir) {
  ChildPlan plan;
  plan.argv_storage = argv;
  for (std::string& s : plan.argv_storage) plan.argv.push_back(s.data());
  plan.argv.push_back(nullptr);
  plan.candidates = exec_candidates(argv[0]);
  int64_t total = 0;
  for (const auto& entry : files) {
    plan.contents.push_back(&entry.second);
    total += int64_t(entry.second.size());
  }
  plan.private_place.build(kPrivateWorkDir, files);
  plan.fallback_place.build(fallback_dir, files);
  const int64_t tmpfs_bytes = std::max<int64_t>(options.limits.file_size_bytes * 4, 1 << 20) + total;
  plan.tmpfs_options = "size=" + std::to_string(tmpfs_bytes) + ",nr_inodes=" + std::to_string(kTmpfsInodes) +
                       ",mode=1777";
  plan.isolate_network = options.isolate_network;
  plan.isolate_filesystem = options.isolate_filesystem;
  plan.drop_uid = ::geteuid() == 0;
  plan.uid = options.uid;
  plan.gid = options.gid;
  plan.uid_text = std::to_string(options.uid);
  plan.gid_text = std::to_string(options.gid);
  plan.limits = make_limits(options.limits, plan.drop_uid);
  return plan;
}

// ------------------------------------------------------------------------------------------------------------------
// The child, between fork and exec: async-signal-safe calls only, nothing allocated, every failure reported.

void append(ChildReport& report, const char* text) {
  size_t used = std::strlen(report.what);
  while (*text && used + 1 < sizeof report.what) report.what[used++] = *text++;
  report.what[used] = '\0';
}

void send(const ChildPlan& plan, const ChildReport& report) {
  while (::write(plan.status_fd, &report, sizeof report) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void fail(const ChildPlan& plan, ChildReport& report, int err, const char* what,
                       const char* detail = nullptr) {
  report.failed = 1;
  report.error_number = err;
  append(report, what);
  if (detail) append(report, " "), append(report, detail);
  send(plan, report);
  ::_exit(127);
}

// Default dispositions and an empty mask: the evaluator may ignore or block signals (SIGPIPE, its worker threads'
// masks), and ignored signals and the mask would otherwise survive exec.
void reset_signals() {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &action, nullptr);  // glibc's own signals: EINVAL, fine
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// With a private mount namespace: a fresh tmpfs on each world-writable place, the working directory and files inside
// the new /tmp. Returns the place to work in (the fallback when /tmp could not be replaced).
const WorkPlace* isolate_filesystem(const ChildPlan& plan, ChildReport& report) {
  if (::unshare(CLONE_NEWNS) != 0) return &plan.fallback_place;
  // Without this our mounts would propagate to the host's (shared) mount tree.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return &plan.fallback_place;
  bool tmp_mounted = false, all_mounted = true;
  for (const char* target : kPrivateMounts) {
    struct stat st {};
    if (::stat(target, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    const bool ok = ::mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, plan.tmpfs_options.c_str()) == 0;
    if (ok && std::strcmp(target, "/tmp") == 0) tmp_mounted = true;
    all_mounted = all_mounted && ok;
  }
  if (!tmp_mounted) return &plan.fallback_place;
  const WorkPlace& place = plan.private_place;
  if (::mkdir(place.dir.c_str(), 0700) != 0) fail(plan, report, errno, "mkdir", place.dir.c_str());
  for (size_t i = 0; i < place.files.size(); ++i) {
    const int err = write_new_file(place.files[i].c_str(), plan.contents[i]->data(), plan.contents[i]->size());
    if (err != 0) fail(plan, report, err, "write", place.files[i].c_str());
  }
  report.filesystem = all_mounted;
  return &place;
}

void redirect_stdio(const ChildPlan& plan, ChildReport& report) {
  // Not O_CLOEXEC: when fd 0 was closed, open() returns 0 and dup2(0, 0) keeps its flags. Above 2 it is closed at
  // exec by close_other_fds_on_exec().
  const int null = ::open("/dev/null", O_RDONLY);
  if (null < 0) fail(plan, report, errno, "open /dev/null");
  if (::dup2(null, 0) < 0 || ::dup2(plan.out_fd, 1) < 0 || ::dup2(plan.err_fd, 2) < 0)
    fail(plan, report, errno, "dup2");
}

// Raw syscalls: they change exactly this (only) thread's credentials, with no glibc machinery behind them.
void drop_uid(const ChildPlan& plan, ChildReport& report, const WorkPlace& place) {
  if (::chown(place.dir.c_str(), plan.uid, plan.gid) != 0) fail(plan, report, errno, "chown", place.dir.c_str());
  for (const std::string& file : place.files)
    if (::chown(file.c_str(), plan.uid, plan.gid) != 0) fail(plan, report, errno, "chown", file.c_str());
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(plan, report, errno, "setgroups");
  if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0)
    fail(plan, report, errno, "setgid", plan.gid_text.c_str());
  if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0)
    fail(plan, report, errno, "setuid", plan.uid_text.c_str());
  if (::getuid() != plan.uid || ::geteuid() != plan.uid) fail(plan, report, EPERM, "setuid", plan.uid_text.c_str());
  report.uid = 1;
}

// Limits only ever go down: a value above the current hard limit (a non-root evaluator's) is clamped to it.
void apply_limits(const ChildPlan& plan, ChildReport& report) {
  for (const Limit& limit : plan.limits) {
    struct rlimit current {};
    if (::getrlimit(limit.resource, &current) != 0) fail(plan, report, errno, "getrlimit", limit.name);
    rlim_t hard = limit.value;
    if (limit.resource == RLIMIT_CPU) hard = limit.value + 1;
    hard = std::min(hard, current.rlim_max);
    const struct rlimit wanted = {std::min(limit.value, hard), hard};
    if (::setrlimit(limit.resource, &wanted) != 0) fail(plan, report, errno, "setrlimit", limit.name);
  }
}

// Whatever else the evaluator has open (fds some library opened without O_CLOEXEC) must not reach the program.
void close_other_fds_on_exec() {
#if defined(SYS_close_range) && defined(CLOSE_RANGE_CLOEXEC)
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return;
#elif defined(SYS_close_range)
  if (::syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) == 0) return;
#endif
  struct rlimit files {};
  const rlim_t top = ::getrlimit(RLIMIT_NOFILE, &files) == 0 ? std::min<rlim_t>(files.rlim_cur, 1 << 16) : 1024;
  for (int fd = 3; rlim_t(fd) < top; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

[[noreturn]] void exec_program(const ChildPlan& plan, ChildReport& report, const WorkPlace& place) {
  send(plan, report);  // what was applied; a successful exec then closes the pipe (EOF for the parent)
  int err = ENOENT;
  for (const std::string& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), place.env.data());
    if (errno != ENOENT && errno != ENOTDIR && err == ENOENT) err = errno;  // e.g. EACCES: report it, keep looking
  }
  report.exec_failed = 1;
  fail(plan, report, err, "cannot execute", plan.argv[0]);
}

[[noreturn]] void run_child(const ChildPlan& plan) {
  ChildReport report;
  reset_signals();
  if (::setsid() < 0) fail(plan, report, errno, "setsid");  // own session and process group: killable as one
  if (plan.isolate_network && ::unshare(CLONE_NEWNET) == 0) report.network = 1;  // only a down loopback inside
  const WorkPlace* place = plan.isolate_filesystem ? isolate_filesystem(plan, report) : &plan.fallback_place;
  // chdir before dropping the uid: the fallback directory's ancestors need not be searchable by the sandbox uid.
  if (::chdir(place->dir.c_str()) != 0) fail(plan, report, errno, "chdir", place->dir.c_str());
  redirect_stdio(plan, report);
  if (plan.drop_uid) drop_uid(plan, report, *place);
  // After the uid drop: setuid() under an already low RLIMIT_NPROC, to a uid with that many tasks (zombies left by an
  // earlier run count), would make the exec fail with EAGAIN.
  apply_limits(plan, report);
  close_other_fds_on_exec();
  exec_program(plan, report, *place);
}

// ------------------------------------------------------------------------------------------------------------------
// The parent after fork: supervise until the child exited and the pipes are drained.

struct Stream {
  Fd fd;
  std::string text;
  size_t keep = 0;
  bool truncated = false;
};

// Reads what `stream` has now, keeping up to stream.keep bytes and dropping the rest; false at EOF (or an error).
// At most a few chunks per call, so a program that writes as fast as we read cannot starve the deadline check.
bool read_available(Stream& stream) {
  char buffer[1 << 16];
  for (int chunk = 0; chunk < 16; ++chunk) {
    const ssize_t n = ::read(stream.fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    const size_t room = stream.keep - std::min(stream.keep, stream.text.size());
    stream.text.append(buffer, std::min(room, size_t(n)));
    if (size_t(n) > room) stream.truncated = true;
  }
  return true;
}

// Whether the child has exited, without reaping it: while it is a zombie its pid (= its process group's id) cannot
// be reused, so kill(-pid) cannot hit a stranger. ECHILD (the evaluator set SIGCHLD to SIG_IGN, so the kernel reaped
// it) also means it is gone.
bool has_exited(pid_t pid) {
  siginfo_t info {};
  if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  return info.si_pid == pid;
}

int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  return int(::syscall(SYS_pidfd_open, pid, 0));  // CLOEXEC by definition; -1 (ENOSYS) on old kernels
#else
  (void)pid;
  return -1;
#endif
}

int millis_until(Clock::time_point when, Clock::time_point now) {
  if (when <= now) return 0;
  return int(std::chrono::ceil<std::chrono::milliseconds>(when - now).count());
}

struct Supervision {
  bool timed_out = false;
  bool reaped = false;  // false: the exit status is lost (SIGCHLD ignored)
  int wait_status = 0;
};

// streams: [0] status, [1] stdout, [2] stderr.
Supervision supervise(pid_t pid, Stream (&streams)[3], Clock::time_point deadline, bool sweep_uid, uid_t uid) {
  Supervision out;
  Fd pidfd(pidfd_of(pid));
  bool exited = false;
  Clock::time_point drain_until{};
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (!exited && !out.timed_out && now >= deadline) {
      out.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);  // in case it was killed before its setsid()
    }
    if (!exited && has_exited(pid)) {
      exited = true;
      ::kill(-pid, SIGKILL);  // the rest of its process group
      if (sweep_uid) kill_processes_of(uid);  // and whatever left the group, as long as it kept the uid
      drain_until = Clock::now() + kDrainGrace;
    }
    const bool pipes_open = streams[1].fd.get() >= 0 || streams[2].fd.get() >= 0;
    if (exited && (!pipes_open || Clock::now() >= drain_until)) break;

    pollfd fds[4];
    int n = 0, index[4];
    for (int i = 0; i < 3; ++i)
      if (streams[i].fd.get() >= 0) index[n] = i, fds[n++] = {streams[i].fd.get(), POLLIN, 0};
    const bool watch_exit = !exited && pidfd.get() >= 0;
    if (watch_exit) index[n] = -1, fds[n++] = {pidfd.get(), POLLIN, 0};
    int timeout_ms;
    if (exited) {
      timeout_ms = millis_until(drain_until, Clock::now());
    } else {
      timeout_ms = out.timed_out ? 100 : millis_until(deadline, Clock::now());
      if (!watch_exit) timeout_ms = std::min(timeout_ms, int(kExitTick.count()));
    }
    if (::poll(fds, nfds_t(n), timeout_ms) <= 0) continue;  // timeout or EINTR: re-check the clock and the child
    for (int k = 0; k < n; ++k) {
      if (index[k] < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) continue;
      if (!read_available(streams[index[k]])) streams[index[k]].fd.reset();
    }
  }
  // Whatever the child reported is buffered in the status pipe by now (written before its exec or exit).
  if (streams[0].fd.get() >= 0) read_available(streams[0]);
  pid_t waited;
  while ((waited = ::waitpid(pid, &out.wait_status, 0)) < 0 && errno == EINTR) {
  }
  out.reaped = waited == pid;
  return out;
}

// The last complete report in the status pipe's bytes (a flags report, then possibly a failure report).
bool last_report(const std::string& bytes, ChildReport& report) {
  bool found = false;
  for (size_t at = 0; at + sizeof(ChildReport) <= bytes.size(); at += sizeof(ChildReport)) {
    ChildReport candidate;
    std::memcpy(&candidate, bytes.data() + at, sizeof candidate);
    if (candidate.magic != kReportMagic) break;
    candidate.what[sizeof candidate.what - 1] = '\0';
    report = candidate;
    found = true;
  }
  return found;
}

std::string setup_error(const ChildReport& report, const std::string& program) {
  std::string message = std::string(report.what) + ": " + std::strerror(report.error_number);
  if (report.exec_failed && report.error_number == ENOENT && program.find('/') == std::string::npos)
    message += std::string(" (looked in ") + kSandboxPath + ")";
  return message;
}

void validate(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& files,
              const SandboxOptions& options) {
  GRANITE_CHECK(!argv.empty() && !argv[0].empty(), "run_sandboxed: empty command");
  for (const auto& entry : files) {
    const std::string& name = entry.first;
    GRANITE_CHECK(!name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
                      name.find('\0') == std::string::npos,
                  "run_sandboxed: file names must be plain names, got \"", name, "\"");
  }
  const SandboxLimits& l = options.limits;
  GRANITE_CHECK(std::isfinite(l.timeout_s) && l.timeout_s > 0 && l.timeout_s < 1e6,
                "sandbox timeout_s must be > 0 (and < 1e6), got ", l.timeout_s);
  GRANITE_CHECK(l.memory_bytes > 0 && l.file_size_bytes > 0 && l.max_processes > 0 && l.max_open_files > 0 &&
                    l.max_output_bytes >= 0,
                "sandbox limits must be positive (memory ", l.memory_bytes, ", file size ", l.file_size_bytes,
                ", processes ", l.max_processes, ", open files ", l.max_open_files, ", output ", l.max_output_bytes,
                ")");
  GRANITE_CHECK(::geteuid() != 0 || (options.uid != 0 && options.gid != 0),
                "sandbox: running as root, the program needs an unprivileged uid/gid, got ", options.uid, "/",
                options.gid);
}

// "Segmentation fault" for SIGSEGV; thread-safe where glibc has sigdescr_np (2.32+), unlike strsignal().
const char* signal_name(int sig) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  return ::sigdescr_np(sig);
#else
  return ::strsignal(sig);
#endif
}

}  // namespace

// ------------------------------------------------------------------------------------------------------------------

std::string SandboxResult::describe() const {
  switch (status) {
    case SandboxStatus::Exited:
      return exit_code == 0 ? "passed" : "failed: exit " + std::to_string(exit_code);
    case SandboxStatus::Signaled: {
      const char* name = signal_name(signal);
      return "signal " + std::to_string(signal) + " (" + (name ? name : "unknown") + ")";
    }
    case SandboxStatus::TimedOut: {
      char text[64];
      std::snprintf(text, sizeof text, "timed out after %.1f s", seconds);
      return text;
    }
    case SandboxStatus::SetupFailed:
      return "setup failed: " + error;
  }
  return "unknown status";
}

SandboxResult run_sandboxed(const std::vector<std::string>& argv,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            const SandboxOptions& options) {
  validate(argv, files, options);
  ScratchDir scratch(scratch_root(options), files);
  ChildPlan plan = make_plan(argv, files, options, scratch.work());
  Stream streams[3];
  Fd status_w, out_w, err_w;
  make_pipe(streams[0].fd, status_w);
  make_pipe(streams[1].fd, out_w);
  make_pipe(streams[2].fd, err_w);
  streams[0].keep = 4 * sizeof(ChildReport);
  streams[1].keep = streams[2].keep = size_t(options.limits.max_output_bytes);
  plan.status_fd = status_w.get(), plan.out_fd = out_w.get(), plan.err_fd = err_w.get();

  const Clock::time_point start = Clock::now();
  const pid_t pid = ::fork();
  GRANITE_CHECK(pid >= 0, "sandbox: fork failed: ", std::strerror(errno));
  if (pid == 0) run_child(plan);
  status_w.reset(), out_w.reset(), err_w.reset();  // our copies: EOF must come when the program's side closes
  for (Stream& s : streams) ::fcntl(s.fd.get(), F_SETFL, O_NONBLOCK);

  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.limits.timeout_s));
  const Supervision run = supervise(pid, streams, start + timeout, plan.drop_uid, plan.uid);

  SandboxResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.stdout_text = std::move(streams[1].text), result.stdout_truncated = streams[1].truncated;
  result.stderr_text = std::move(streams[2].text), result.stderr_truncated = streams[2].truncated;
  ChildReport report;
  if (last_report(streams[0].text, report)) {
    result.network_isolated = report.network, result.filesystem_isolated = report.filesystem;
    result.uid_dropped = report.uid;
  }
  if (report.failed) {
    result.status = SandboxStatus::SetupFailed;
    result.error = setup_error(report, argv[0]);
  } else if (run.timed_out) {
    result.status = SandboxStatus::TimedOut;
  } else if (!run.reaped) {  // never report a verdict we did not see
    result.status = SandboxStatus::SetupFailed;
    result.error = "lost the program's exit status (is SIGCHLD ignored in the evaluator?)";
  } else if (WIFEXITED(run.wait_status)) {
    result.status = SandboxStatus::Exited;
    result.exit_code = WEXITSTATUS(run.wait_status);
  } else {
    result.status = SandboxStatus::Signaled;
    result.signal = WIFSIGNALED(run.wait_status) ? WTERMSIG(run.wait_status) : 0;
  }
  return result;
}

// ------------------------------------------------------------------------------------------------------------------

namespace {
bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}
}  // namespace

std::string find_python() {
  if (const char* env = std::getenv("GRANITE_PYTHON"); env && *env) {
    GRANITE_CHECK(is_executable_file(env), "GRANITE_PYTHON=", env, " is not an executable file");
    return env;
  }
  // /usr/bin/python3 before PATH: a PATH entry such as a pyenv shim under /root is not readable by the sandbox uid.
  if (is_executable_file("/usr/bin/python3")) return "/usr/bin/python3";
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    if (is_executable_file(dir + "/python3")) return dir + "/python3";
    start = end + 1;
  }
  GRANITE_FAIL("no Python interpreter: GRANITE_PYTHON is not set, /usr/bin/python3 is not executable, and there is no "
               "python3 on PATH (", dirs, ")");
}

}  // namespace granite
