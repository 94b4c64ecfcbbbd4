#include "support/tensor_match.h"

#include <sstream>

namespace granite::test {

Diff max_abs_diff(const torch::Tensor& actual, const torch::Tensor& expected) {
  Diff d;
  if (actual.sizes() != expected.sizes()) {
    d.max_abs = std::numeric_limits<double>::infinity();
    d.where = "shape mismatch";
    return d;
  }
  if (actual.numel() == 0) return d;
  auto diff = (actual.detach().to(torch::kCPU, torch::kFloat64) - expected.detach().to(torch::kCPU, torch::kFloat64))
                  .abs()
                  .flatten();
  // NaN anywhere must fail: treat it as an infinite difference.
  diff = torch::where(torch::isnan(diff), torch::full_like(diff, std::numeric_limits<double>::infinity()), diff);
  int64_t idx = diff.argmax().item<int64_t>();
  d.max_abs = diff[idx].item<double>();
  std::ostringstream where;
  where << "[";
  int64_t rem = idx;
  std::vector<int64_t> coords(actual.dim());
  for (int64_t k = actual.dim() - 1; k >= 0; --k) {
    coords[k] = rem % actual.size(k);
    rem /= actual.size(k);
  }
  for (size_t k = 0; k < coords.size(); ++k) where << (k ? ", " : "") << coords[k];
  where << "]";
  d.where = where.str();
  return d;
}

std::string describe(const torch::Tensor& actual, const torch::Tensor& expected) {
  auto d = max_abs_diff(actual, expected);
  std::ostringstream out;
  out << "max |a-b| = " << d.max_abs << " at " << d.where << "; shapes " << actual.sizes() << " vs "
      << expected.sizes();
  return out.str();
}

}  // namespace granite::test
