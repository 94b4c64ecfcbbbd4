#pragma once
// Tensor comparison for tests, with a readable failure message (max abs diff and where it is); also brings in the
// fixture and scratch paths of support/paths.h.
#include <torch/types.h>

#include <string>

#include "support/paths.h"

namespace granite::test {

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
