#pragma once
// A whole file mapped read-only (mmap), unmapped on destruction. Errors name the path. An empty file maps to
// data() == nullptr, size() == 0.
#include <cstddef>
#include <string>

namespace granite {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const void* data() const { return data_; }
  const char* chars() const { return static_cast<const char*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace granite
