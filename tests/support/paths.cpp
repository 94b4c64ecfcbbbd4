#include "support/paths.h"

#include <unistd.h>

#include <filesystem>

#include "granite/core/remove_tree.h"

namespace granite::test {

std::string source_path(const std::string& relative) { return std::string(GRANITE_SOURCE_DIR) + "/" + relative; }

std::string scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(GRANITE_BINARY_DIR) / "test_scratch" / name;
  granite::remove_tree(dir.string());  // not std::filesystem::remove_all: see granite/core/remove_tree.h
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string process_scratch_dir(const std::string& name) {
  return scratch_dir(name + "-" + std::to_string(::getpid()));
}

}  // namespace granite::test
