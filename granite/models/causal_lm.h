#pragma once
// The one interface both architectures implement: a causal LM whose single forward serves training, evaluation and
// cached generation (house rule 5). Parameter names are the HF checkpoint keys.
#include <torch/nn/module.h>

#include "granite/config/model_config.h"
#include "granite/nn/kv_cache.h"

namespace granite {

class CausalLMImpl : public torch::nn::Module {
 public:
  // input_ids: (B, T) int64. position_ids: (B, T) int64, or undefined for [cache length, cache length + T).
  // cache: nullptr for a plain forward (training); otherwise keys/values are appended and attention covers the cache.
  // Returns logits (B, T, V) in the parameters' dtype.
  virtual torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                                KVCache* cache = nullptr) = 0;
  const ModelConfig& config() const { return config_; }

 protected:
  explicit CausalLMImpl(ModelConfig cfg) : config_(std::move(cfg)) {}
  ModelConfig config_;
};

using CausalLM = std::shared_ptr<CausalLMImpl>;

}  // namespace granite
