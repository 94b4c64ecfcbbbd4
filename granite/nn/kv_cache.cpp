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

KVCache::Destination KVCache::destination(int64_t layer, int64_t T) const {
  GRANITE_CHECK(layer >= 0 && layer < int64_t(keys_.size()), "KV cache has no layer ", layer);
  if (slots_.defined()) return {keys_[layer], values_[layer], slots_, 0};
  GRANITE_CHECK(length_ + T <= max_length_, "KV cache overflow: ", length_, " cached + ", T,
                " new tokens > capacity ", max_length_);
  return {keys_[layer], values_[layer], torch::Tensor(), length_};
}

std::pair<torch::Tensor, torch::Tensor> KVCache::visible(int64_t layer, int64_t T) const {
  if (slots_.defined()) return {keys_[layer], values_[layer]};  // static shapes: the whole buffers, masked
  return {keys_[layer].narrow(2, 0, length_ + T), values_[layer].narrow(2, 0, length_ + T)};
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const int64_t T = k.size(2);
  const auto dst = destination(layer, T);
  GRANITE_CHECK(k.size(0) == batch_size_, "KV cache batch size is ", batch_size_, ", got ", k.size(0));
  if (dst.slots.defined()) {  // static shapes: write at device-side slots, attend over the whole buffer
    dst.keys.index_copy_(2, dst.slots, k);
    dst.values.index_copy_(2, dst.slots, v);
  } else {
    dst.keys.narrow(2, dst.first, T).copy_(k);
    dst.values.narrow(2, dst.first, T).copy_(v);
  }
  return visible(layer, T);
}

void KVCache::advance(int64_t tokens) {
  if (slots_.defined()) return;  // static mode: the caller tracks the length
  GRANITE_CHECK(length_ + tokens <= max_length_, "KV cache overflow on advance");
  length_ += tokens;
}

}  // namespace granite
