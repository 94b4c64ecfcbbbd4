#include "granite/nn/rotary.h"

namespace granite {

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& position_ids, int64_t head_dim, double theta,
                                                     torch::ScalarType dtype) {
  auto opts = torch::TensorOptions().device(position_ids.device());
  // Same expression as HF: 1.0 / (base ** (arange(0, dim, 2, int64).float() / dim)).
  auto exponent = torch::arange(0, head_dim, 2, opts.dtype(torch::kInt64)).to(torch::kFloat32) / double(head_dim);
  auto inv_freq = 1.0 / torch::pow(theta, exponent);                           // (D/2)
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;      // (B, T, D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                                   // (B, T, D)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);  // cos/sin broadcast over heads
}

}  // namespace granite
