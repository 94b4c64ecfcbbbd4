#pragma once
// Whether a path exists / is a directory (stat(), following symbolic links), POSIX-only like list_directory.h; and
// making a directory with its missing parents (mkdir -p).
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "granite/core/check.h"

namespace granite {

inline bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

inline bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A path from a config file: relative paths are relative to `base` (the config's directory), absolute ones stay.
inline std::string resolve_path(const std::string& path, const std::string& base) {
  if (path.empty() || path.front() == '/' || base.empty()) return path;
  return base + "/" + path;
}

// Creates `dir` and its missing parents; an error names the path (and says so when it is a file).
inline void make_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  GRANITE_CHECK(!ec, "cannot create directory ", dir, ": ", ec.message());
  GRANITE_CHECK(is_directory(dir), "cannot create directory ", dir, ": it exists and is not a directory");
}

}  // namespace granite
