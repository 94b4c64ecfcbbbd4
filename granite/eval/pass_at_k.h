#pragma once
// The unbiased pass@k estimator of Chen et al. 2021 (Evaluating Large Language Models Trained on Code, eq. 1; the
// human-eval harness's estimate_pass_at_k): with n samples of which c are correct,
//   pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i),
// the product form being the numerically stable one. Defined for k <= n.
#include <cstdint>
#include <vector>

namespace granite {

double pass_at_k(int64_t n, int64_t c, int64_t k);

// The mean over problems, each with its own (n, c); k must not exceed any n.
double mean_pass_at_k(const std::vector<int64_t>& n, const std::vector<int64_t>& c, int64_t k);

}  // namespace granite
