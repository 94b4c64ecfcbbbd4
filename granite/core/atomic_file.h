#pragma once
// Files are written atomically so that nothing the user had is ever half-overwritten: data goes to a temporary file
// beside the target, is fsync'ed, then rename()d over the target, and the directory is fsync'ed.
// A writer destroyed without commit() removes its temporary file, leaving the target untouched.
#include <cstddef>
#include <string>

namespace granite {

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
};

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& content);
// fsync a directory so a rename inside it is durable.
void fsync_directory(const std::string& dir);

}  // namespace granite
