#include "granite/nn/neftune.h"

#include <cmath>

namespace granite {

torch::Tensor add_neftune_noise(const torch::Tensor& embeddings, double alpha) {
  const double magnitude = alpha / std::sqrt(double(embeddings.size(1) * embeddings.size(2)));
  // A constant offset: gradients pass through to the embeddings unchanged.
  const torch::Tensor noise = torch::empty_like(embeddings).uniform_(-magnitude, magnitude).detach();
  return embeddings + noise;
}

}  // namespace granite
