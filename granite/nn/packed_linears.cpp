#include "granite/nn/packed_linears.h"

#include <ATen/core/grad_mode.h>

#include "granite/core/check.h"
#include "granite/kernels/fused_ops.h"

namespace granite {

PackedLinears::PackedLinears(std::vector<torch::nn::Linear> parts) : parts_(std::move(parts)) {
  GRANITE_CHECK(!parts_.empty(), "PackedLinears: no parts");
  const auto& first = parts_.front()->weight;
  const bool biased = parts_.front()->bias.defined();
  std::vector<torch::Tensor> weights, biases;
  for (const auto& part : parts_) {
    GRANITE_CHECK(part->weight.size(1) == first.size(1) && part->weight.device() == first.device() &&
                      part->weight.scalar_type() == first.scalar_type() && part->bias.defined() == biased,
                  "PackedLinears: parts differ (in_features, device, dtype or bias): ", part->weight.sizes(), " ",
                  part->weight.device(), " vs ", first.sizes(), " ", first.device());
    weights.push_back(part->weight);
    if (biased) biases.push_back(part->bias);
  }
  torch::NoGradGuard no_grad;
  weight_ = torch::cat(weights, 0);
  if (biased) bias_ = torch::cat(biases, 0);
  int64_t row = 0;
  for (auto& part : parts_) {  // each part's parameters become views of the packed tensors; their storage is freed
    const int64_t rows = part->weight.size(0);
    part->weight.set_data(weight_.narrow(0, row, rows));
    if (biased) part->bias.set_data(bias_.narrow(0, row, rows));
    row += rows;
  }
}

bool PackedLinears::intact() const {
  for (const auto& part : parts_) {
    if (!part->weight.is_alias_of(weight_) || (bias_.defined() && !part->bias.is_alias_of(bias_))) return false;
  }
  return true;
}

std::pair<torch::Tensor, torch::Tensor> PackedLinears::usable() {
  if (!weight_.defined() || at::GradMode::is_enabled()) return {};
  if (!intact()) {  // a part was re-pointed: the packed copy is stale (and would hold memory)
    weight_ = bias_ = torch::Tensor();
    return {};
  }
  return {weight_, bias_};
}

torch::Tensor PackedLinears::forward(const torch::Tensor& x) {
  const auto [weight, bias] = usable();
  return weight.defined() ? kernels::linear(x, weight, bias) : torch::Tensor();
}

}  // namespace granite
