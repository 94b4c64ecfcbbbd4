#include "granite/eval/pass_at_k.h"

#include "granite/core/check.h"

namespace granite {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  GRANITE_CHECK(n >= 1 && c >= 0 && c <= n, "pass@k needs 0 <= correct (", c, ") <= samples (", n, "), samples >= 1");
  GRANITE_CHECK(k >= 1 && k <= n, "pass@", k, " needs 1 <= k <= samples (", n, ")");
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  double all_wrong = 1.0;     // probability that k samples drawn without replacement are all wrong
  for (int64_t i = n - c + 1; i <= n; ++i) all_wrong *= 1.0 - double(k) / double(i);
  return 1.0 - all_wrong;
}

double mean_pass_at_k(const std::vector<int64_t>& n, const std::vector<int64_t>& c, int64_t k) {
  GRANITE_CHECK(n.size() == c.size() && !n.empty(), "pass@k needs one (samples, correct) pair per problem");
  double sum = 0;
  for (size_t i = 0; i < n.size(); ++i) sum += pass_at_k(n[i], c[i], k);
  return sum / double(n.size());
}

}  // namespace granite
