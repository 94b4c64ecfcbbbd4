#pragma once
// Rotary position embedding, HF/NeoX "rotate_half" layout (not Meta's interleaved pairs):
//   inv_freq[i] = 1 / theta^(2i/D), i < D/2 (fp32);  freqs = pos * inv_freq;  emb = cat(freqs, freqs)
//   x' = x * cos(emb) + rotate_half(x) * sin(emb),   rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])
// Source: transformers modeling_llama.py (LlamaRotaryEmbedding, apply_rotary_pos_emb). cos/sin are computed in fp32
// and cast to the activation dtype, once per model forward and shared by all layers.
#include <torch/types.h>

#include <utility>

namespace granite {

// position_ids (B, T) int64 -> cos, sin each (B, T, D) in `dtype`.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& position_ids, int64_t head_dim, double theta,
                                                     torch::ScalarType dtype);
// x (B, heads, T, D); cos/sin (B, T, D).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace granite
