#include "granite/core/list_directory.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "granite/core/check.h"

namespace granite {

std::vector<std::string> list_directory(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  GRANITE_CHECK(d != nullptr, "cannot read directory ", dir, ": ", std::strerror(errno));
  std::vector<std::string> names;
  for (;;) {
    errno = 0;  // readdir signals an error only through errno
    const dirent* e = ::readdir(d);
    if (e == nullptr) break;
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  const int err = errno;
  ::closedir(d);
  GRANITE_CHECK(err == 0, "cannot read directory ", dir, ": ", std::strerror(err));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace granite
