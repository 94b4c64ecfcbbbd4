#include "granite/nn/kv_cache.h"

#include "granite/core/check.h"

namespace granite {

KVCache::KVCache(const ModelConfig& cfg, int64_t batch_size, int64_t max_length, torch::ScalarType dtype,
                 torch::Device device)
    : batch_size_(batch_size), max_length_(max_length) {
  GRANITE_CHECK(batch_size > 0 && max_length > 0, "KV cache needs a positive batch size (", batch_size,
                ") and length (", max_length, ")");
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const int64_t Hkv = cfg.num_key_value_heads, D = cfg.resolved_head_dim();
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    keys_.push_back(torch::zeros({batch_size, Hkv, max_length, D}, opts));
    values_.push_back(torch::zeros({batch_size, Hkv, max_length, D}, opts));
  }
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  GRANITE_CHECK(layer >= 0 && layer < int64_t(keys_.size()), "KV cache has no layer ", layer);
  if (slots_.defined()) {  // static shapes: write at device-side slots, attend over the whole buffer
    keys_[layer].index_copy_(2, slots_, k);
    values_[layer].index_copy_(2, slots_, v);
    return {keys_[layer], values_[layer]};
  }
  const int64_t T = k.size(2), end = length_ + T;
  GRANITE_CHECK(end <= max_length_, "KV cache overflow: ", length_, " cached + ", T, " new tokens > capacity ",
                max_length_);
  GRANITE_CHECK(k.size(0) == batch_size_, "KV cache batch size is ", batch_size_, ", got ", k.size(0));
  keys_[layer].narrow(2, length_, T).copy_(k);
  values_[layer].narrow(2, length_, T).copy_(v);
  return {keys_[layer].narrow(2, 0, end), values_[layer].narrow(2, 0, end)};
}

void KVCache::advance(int64_t tokens) {
  if (slots_.defined()) return;  // static mode: the caller tracks the length
  GRANITE_CHECK(length_ + tokens <= max_length_, "KV cache overflow on advance");
  length_ += tokens;
}

}  // namespace granite
