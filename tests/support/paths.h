#pragma once
// Fixture and scratch paths for tests (LibTorch-free, so data-pipeline tests need no tensor headers).
#include <string>

namespace granite::test {

// Absolute path of a file in the repository (fixtures ship in tests/fixtures/).
std::string source_path(const std::string& relative);
// A fresh, empty directory under the build tree for one test; removed and recreated on each call.
std::string scratch_dir(const std::string& name);

}  // namespace granite::test
