#include "granite/core/remove_tree.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "granite/core/check.h"

namespace granite {

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path) == 0 ? 0 : errno; }
}  // namespace

void remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return;
  // Depth first (children before their directory), physical (never follow a symlink out of the tree).
  int rc = ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  GRANITE_CHECK(rc == 0, path, ": cannot remove: ", std::strerror(rc > 0 ? rc : errno));
}

}  // namespace granite
