#pragma once
// Preallocated key/value cache: one (B, Hkv, Tmax, D) buffer pair per layer, filled in place as decoding advances.
// Static shapes (no torch::cat per step) keep decode allocation-free and CUDA-graph friendly.
// Protocol for one model forward over T new tokens: every layer calls append(layer, k, v) and attends to the
// returned views of positions [0, length() + T); the model calls advance(T) once after the last layer.
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "granite/config/model_config.h"

namespace granite {

class KVCache {
 public:
  KVCache(const ModelConfig& cfg, int64_t batch_size, int64_t max_length, torch::ScalarType dtype,
          torch::Device device);

  // Writes k, v (B, Hkv, T, D) at [length(), length()+T) of `layer`; returns views of [0, length()+T).
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t tokens);

  // For kernels that write the T new positions of `layer` themselves (kernels::rope_into_cache), instead of
  // append(): the layer's whole buffers (B, Hkv, Tmax, D) and where the positions go -- the device-side slots in
  // static mode, else [first, first + T) with first = length() (checked against the capacity). visible() then
  // gives what append() would have returned.
  struct Destination {
    torch::Tensor keys, values, slots;
    int64_t first = 0;
  };
  Destination destination(int64_t layer, int64_t T) const;
  std::pair<torch::Tensor, torch::Tensor> visible(int64_t layer, int64_t T) const;
  void reset() { length_ = 0; }

  // Static-shape mode, for decode steps captured in a CUDA graph (granite/generate/static_decode.h): while `slots`
  // (int64 (T), on the cache's device) is set, append() writes the T new positions at those slots (index_copy_, no
  // host-side offset) and returns the WHOLE buffers (B, Hkv, Tmax, D): the caller masks the slots not written yet.
  // length() is then the caller's business: advance() does nothing (a replayed graph runs no host code anyway).
  void set_write_slots(torch::Tensor slots) { slots_ = std::move(slots); }
  bool static_mode() const { return slots_.defined(); }

  int64_t length() const { return length_; }  // tokens already cached
  int64_t capacity() const { return max_length_; }
  int64_t batch_size() const { return batch_size_; }

 private:
  std::vector<torch::Tensor> keys_, values_;  // per layer, (B, Hkv, Tmax, D)
  torch::Tensor slots_;                        // static mode's write slots
  int64_t batch_size_, max_length_, length_ = 0;
};

}  // namespace granite
