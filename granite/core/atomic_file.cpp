#include "granite/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "granite/core/check.h"

namespace granite {

namespace {
std::string errno_text() { return std::strerror(errno); }
std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}
}  // namespace

void WritebackKicker::appended(int fd, int64_t bytes) {
  written_ += bytes;
  if (written_ - kicked_ < step_) return;
#ifdef __linux__
  // Best effort: an error here (e.g. a filesystem without it) changes nothing, the final fsync still decides.
  ::sync_file_range(fd, kicked_, written_ - kicked_, SYNC_FILE_RANGE_WRITE);
#else
  (void)fd;
#endif
  kicked_ = written_;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GRANITE_CHECK(fd_ >= 0, path_, ": cannot create temporary file ", tmp_path_, ": ", errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    GRANITE_CHECK(n > 0, path_, ": write failed: ", errno_text());
    p += n;
    size -= static_cast<size_t>(n);
    writeback_.appended(fd_, n);
  }
}

void AtomicFile::commit() {
  GRANITE_CHECK(!committed_, path_, ": committed twice");
  GRANITE_CHECK(::fsync(fd_) == 0, path_, ": fsync failed: ", errno_text());
  int rc = ::close(fd_);
  fd_ = -1;
  GRANITE_CHECK(rc == 0, path_, ": close failed: ", errno_text());
  GRANITE_CHECK(::rename(tmp_path_.c_str(), path_.c_str()) == 0, path_, ": rename from ", tmp_path_,
                " failed: ", errno_text());
  committed_ = true;
  fsync_directory(parent_of(path_));
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content.data(), content.size());
  f.commit();
}

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  GRANITE_CHECK(fd >= 0, dir, ": cannot open directory to fsync: ", errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  GRANITE_CHECK(rc == 0, dir, ": fsync of directory failed: ", errno_text());
}

}  // namespace granite
