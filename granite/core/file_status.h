#pragma once
// Whether a path exists / is a directory (stat(), following symbolic links), POSIX-only like list_directory.h.
#include <sys/stat.h>

#include <string>

namespace granite {

inline bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

inline bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace granite
