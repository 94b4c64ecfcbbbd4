// remove_tree: our replacement for std::filesystem::remove_all (see granite/core/remove_tree.h for why).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "granite/core/remove_tree.h"
#include "support/tensor_match.h"

namespace fs = std::filesystem;

TEST_CASE("remove_tree deletes a nested tree without following symlinks out of it", "[core]") {
  auto root = granite::test::scratch_dir("remove_tree");
  fs::create_directories(root + "/tree/a/b");
  fs::create_directories(root + "/outside");
  std::ofstream(root + "/tree/a/b/file.txt") << "x";
  std::ofstream(root + "/tree/top.txt") << "y";
  std::ofstream(root + "/outside/keep.txt") << "keep";
  fs::create_directory_symlink(root + "/outside", root + "/tree/a/link");
  granite::remove_tree(root + "/tree");
  REQUIRE_FALSE(fs::exists(root + "/tree"));
  REQUIRE(fs::exists(root + "/outside/keep.txt"));
  granite::remove_tree(root + "/tree");  // missing: no error
  std::ofstream(root + "/single.txt") << "z";
  granite::remove_tree(root + "/single.txt");
  REQUIRE_FALSE(fs::exists(root + "/single.txt"));
}
