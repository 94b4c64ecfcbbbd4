#include "granite/nn/rms_norm.h"

#include <torch/types.h>

#include "granite/kernels/fused_ops.h"

namespace granite {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (kernels::use_fused(x) && weight.scalar_type() == x.scalar_type()) return kernels::rms_norm(x, weight, eps_);
  auto x32 = x.to(torch::kFloat32);
  auto y = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * y.to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> RMSNormImpl::add_forward(const torch::Tensor& x, const torch::Tensor& delta) {
  if (kernels::use_fused(x) && weight.scalar_type() == x.scalar_type()) {
    return kernels::add_rms_norm(x, delta, weight, eps_);
  }
  auto sum = x + delta;
  return {sum, forward(sum)};
}

}  // namespace granite
