#include "granite/generate/sampler.h"

#include "granite/core/check.h"

namespace granite {

torch::Tensor penalize_repeats(const torch::Tensor& logits, const std::vector<int64_t>& seen, double penalty) {
  GRANITE_CHECK(penalty > 0, "repetition penalty (", penalty, ") must be > 0");
  auto x = logits.detach().reshape({-1}).to(torch::kCPU, torch::kFloat32).clone();  // (V)
  if (penalty == 1.0 || seen.empty()) return x;
  const auto ids = torch::tensor(seen, torch::kInt64);
  const auto score = x.index_select(0, ids);
  x.index_put_({ids}, torch::where(score < 0, score * penalty, score / penalty));
  return x;
}

int64_t sample_token(const torch::Tensor& logits, const SamplingOptions& o, at::Generator& generator) {
  auto x = logits.detach().reshape({-1}).to(torch::kCPU, torch::kFloat32);  // (V)
  if (o.greedy) return x.argmax().item<int64_t>();
  GRANITE_CHECK(o.temperature > 0, "temperature (", o.temperature, ") must be > 0 (use greedy for argmax)");
  GRANITE_CHECK(o.top_k >= 0, "top_k (", o.top_k, ") must be >= 0");
  GRANITE_CHECK(o.top_p > 0 && o.top_p <= 1, "top_p (", o.top_p, ") must be in (0, 1]");
  x = x / o.temperature;
  if (o.top_k > 0 && o.top_k < x.size(0)) {  // keep the k largest (HF TopKLogitsWarper)
    auto kth = std::get<0>(x.topk(o.top_k)).min();
    x = x.masked_fill(x < kth, -INFINITY);
  }
  if (o.top_p < 1.0) {  // smallest set whose probability mass reaches top_p (HF TopPLogitsWarper)
    auto [sorted, order] = x.sort(/*dim=*/0, /*descending=*/true);
    auto cum = sorted.softmax(0).cumsum(0);
    auto remove = (cum - sorted.softmax(0)) >= o.top_p;  // mass before this token already reached top_p
    x = x.scatter(0, order, sorted.masked_fill(remove, -INFINITY));
  }
  auto probs = x.softmax(0);
  return probs.multinomial(1, /*replacement=*/false, generator).item<int64_t>();
}

}  // namespace granite
