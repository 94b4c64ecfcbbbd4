#include "granite/train/batch.h"

#include <cstring>

#include "granite/core/check.h"

namespace granite {

namespace {

static_assert(sizeof(Objective) == 1, "objectives are copied byte for byte into a uint8 tensor");

template <typename T>
torch::Tensor as_long(const std::vector<T>& values, int64_t rows, int64_t cols, const torch::Device& device) {
  auto out = torch::empty({rows, cols}, torch::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = int64_t(values[i]);
  return out.to(device);
}

}  // namespace

TrainBatch to_tensors(const PackedBatch& b, const torch::Device& device) {
  const size_t n = size_t(b.rows * b.seq_len);
  GRANITE_CHECK(b.input_ids.size() == n && b.labels.size() == n && b.objectives.size() == n &&
                    b.position_ids.size() == n && b.segment_ids.size() == n,
                "packed batch of ", b.rows, " x ", b.seq_len, " has arrays of the wrong size");
  TrainBatch t;
  t.input_ids = as_long(b.input_ids, b.rows, b.seq_len, device);
  t.labels = as_long(b.labels, b.rows, b.seq_len, device);
  t.position_ids = as_long(b.position_ids, b.rows, b.seq_len, device);
  t.segment_ids = as_long(b.segment_ids, b.rows, b.seq_len, device);
  auto objectives = torch::empty({b.rows, b.seq_len}, torch::kUInt8);
  std::memcpy(objectives.data_ptr<uint8_t>(), b.objectives.data(), n);
  t.objectives = objectives.to(device);
  return t;
}

torch::Tensor document_causal_mask(const torch::Tensor& segment_ids) {
  GRANITE_CHECK(segment_ids.dim() == 2, "segment_ids must be (B, T), got ", segment_ids.dim(), " dimensions");
  const int64_t T = segment_ids.size(1);
  auto same = segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1);  // (B, T, T): [b, query, key]
  auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(segment_ids.device())).tril();
  return (same & causal).unsqueeze(1);
}

}  // namespace granite
