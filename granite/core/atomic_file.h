#pragma once
// Files are written atomically so that nothing the user had is ever half-overwritten: data goes to a temporary file
// beside the target, is fsync'ed, then rename()d over the target, and the directory is fsync'ed.
// A writer destroyed without commit() removes its temporary file, leaving the target untouched.
// Large files start their write-back to disk as they are written (WritebackKicker), so the final fsync does not
// stall for the whole file at once.
#include <cstddef>
#include <cstdint>
#include <string>

namespace granite {

// Asks the kernel to start writing a file's dirty pages every `step` bytes appended (Linux sync_file_range with
// SYNC_FILE_RANGE_WRITE: asynchronous, no durability promise by itself; elsewhere a no-op). Without it, a run that
// writes 500 MB and then fsyncs waits for all 500 MB at the end, on the critical path.
class WritebackKicker {
 public:
  explicit WritebackKicker(int64_t step = int64_t(32) << 20) : step_(step) {}
  // `fd` has had `bytes` more appended (already handed to the kernel, i.e. after write()/fflush()).
  void appended(int fd, int64_t bytes);

 private:
  int64_t step_, written_ = 0, kicked_ = 0;
};

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);  // errors (disk full, ...) name the path
  void commit();                              // fsync + rename + fsync(dir)
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
  WritebackKicker writeback_;
};

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& content);
// fsync a directory so a rename inside it is durable.
void fsync_directory(const std::string& dir);

}  // namespace granite
