#pragma once
// Fixture and scratch paths for tests (LibTorch-free, so data-pipeline tests need no tensor headers).
#include <string>

namespace granite::test {

// Absolute path of a file in the repository (fixtures ship in tests/fixtures/).
std::string source_path(const std::string& relative);
// A fresh, empty directory under the build tree for one test; removed and recreated on each call.
std::string scratch_dir(const std::string& name);
// The same, for fixtures built once and shared by the test cases of one process: ctest runs each test case in its
// own process, several at a time, so the name carries the process id (no process removes another's files).
std::string process_scratch_dir(const std::string& name);

}  // namespace granite::test
