// Loader batches as tensors, and the document mask: a packed row attends exactly as its documents would alone.
#include <catch2/catch.hpp>

#include "granite/data/indexed_dataset.h"
#include "granite/train/batch.h"
#include "support/tensor_match.h"

using granite::TokenId;

namespace {

// Causal softmax attention with an optional (T, T) bool mask; q, k, v (T, D).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, torch::Tensor allowed) {
  auto scores = q.matmul(k.t()) / std::sqrt(double(q.size(1)));
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::softmax(scores, -1).matmul(v);
}

}  // namespace

TEST_CASE("document mask: causal within a document, nothing across documents", "[train][batch]") {
  const auto segments = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2, 2, 3}, torch::kLong).view({1, 10});
  const auto mask = granite::document_causal_mask(torch::cat({segments, torch::zeros_like(segments)}));
  REQUIRE(mask.sizes() == torch::IntArrayRef({2, 1, 10, 10}));
  REQUIRE(mask.scalar_type() == torch::kBool);
  auto a = mask.accessor<bool, 4>();
  auto s = segments.accessor<int64_t, 2>();
  for (int64_t q = 0; q < 10; ++q) {
    for (int64_t k = 0; k < 10; ++k) {
      CHECK(a[0][0][q][k] == (k <= q && s[0][q] == s[0][k]));
      CHECK(a[1][0][q][k] == (k <= q));  // one document: plain causal
    }
  }
}

TEST_CASE("a packed row with the document mask computes each document as if alone", "[train][batch]") {
  torch::manual_seed(3);
  const std::vector<int64_t> lengths = {5, 1, 7, 3};
  std::vector<int64_t> segment_values;
  for (size_t d = 0; d < lengths.size(); ++d) segment_values.insert(segment_values.end(), size_t(lengths[d]), int64_t(d));
  const int64_t T = int64_t(segment_values.size()), D = 8;
  const auto segments = torch::tensor(segment_values, torch::kLong).view({1, T});
  auto q = torch::randn({T, D}, torch::kDouble), k = torch::randn({T, D}, torch::kDouble),
       v = torch::randn({T, D}, torch::kDouble);
  const auto packed = attend(q, k, v, granite::document_causal_mask(segments)[0][0]);
  int64_t start = 0;
  for (int64_t len : lengths) {
    auto sl = [&](const torch::Tensor& x) { return x.narrow(0, start, len); };
    const auto alone = attend(sl(q), sl(k), sl(v), torch::ones({len, len}, torch::kBool).tril());
    REQUIRE_CLOSE(sl(packed), alone, 1e-12);
    start += len;
  }
  // Without the mask the later documents see the earlier ones.
  const auto leaky = attend(q, k, v, torch::ones({T, T}, torch::kBool).tril());
  CHECK(granite::test::max_abs_diff(leaky.narrow(0, 5, T - 5), packed.narrow(0, 5, T - 5)).max_abs > 1e-3);
}

TEST_CASE("loader batches become tensors of the right types and values", "[train][batch]") {
  granite::PackedBatch b;
  b.rows = 2;
  b.seq_len = 3;
  b.input_ids = {5, 6, 0, 7, 8, 9};
  b.labels = {6, 0, -100, 8, 9, 10};
  b.objectives = {granite::Objective::kClm, granite::Objective::kClm, granite::Objective::kIgnore,
                  granite::Objective::kFim, granite::Objective::kFim, granite::Objective::kFim};
  b.position_ids = {0, 1, 2, 0, 1, 2};
  b.segment_ids = {0, 0, 0, 0, 0, 0};
  const granite::TrainBatch t = granite::to_tensors(b);
  CHECK(t.input_ids.scalar_type() == torch::kLong);
  CHECK(t.objectives.scalar_type() == torch::kUInt8);
  CHECK(t.input_ids.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(torch::equal(t.labels, torch::tensor({6, 0, -100, 8, 9, 10}, torch::kLong).view({2, 3})));
  CHECK(torch::equal(t.objectives, torch::tensor({1, 1, 0, 2, 2, 2}, torch::kUInt8).view({2, 3})));
  CHECK(torch::equal(t.position_ids, torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong).view({2, 3})));
  b.labels.pop_back();
  CHECK_THROWS(granite::to_tensors(b));
}
