#pragma once
// Test helpers shared by every test file: fixture paths, scratch directories, tensor comparison with a readable
// failure message (max abs diff and where it is).
#include <torch/types.h>

#include <string>

namespace granite::test {

// Absolute path of a file in the repository (fixtures ship in tests/fixtures/).
std::string source_path(const std::string& relative);
// A fresh, empty directory under the build tree for one test; removed and recreated on each call.
std::string scratch_dir(const std::string& name);

struct Diff {
  double max_abs = 0;
  std::string where;  // index of the largest difference
};
Diff max_abs_diff(const torch::Tensor& actual, const torch::Tensor& expected);

// "max |a-b| = 3e-05 at [0, 3, 17]; shapes [2, 13, 256] vs [2, 13, 256]"
std::string describe(const torch::Tensor& actual, const torch::Tensor& expected);

}  // namespace granite::test

// REQUIRE that two tensors have equal shapes and max abs difference <= tol, printing the diff when not.
#define REQUIRE_CLOSE(actual, expected, tol)                                               \
  do {                                                                                    \
    auto _a = (actual);                                                                   \
    auto _e = (expected);                                                                 \
    INFO(::granite::test::describe(_a, _e));                                             \
    REQUIRE(_a.sizes() == _e.sizes());                                                    \
    REQUIRE(::granite::test::max_abs_diff(_a, _e).max_abs <= (tol));                      \
  } while (0)
