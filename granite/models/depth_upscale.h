#pragma once
// Depth up-scaling as the Granite paper built the 34B from the 20B (§3, following SOLAR, Kim et al. 2024):
// take two copies of an L-layer model, drop the LAST n_drop layers of the first and the FIRST n_drop layers of the
// second, and stack them: 2 * (L - n_drop) layers. Granite: L = 52, n_drop = 8 -> 44 + 44 = 88.
//   new[i]           = old[i]            for i < L - n_drop
//   new[L - n_drop + j] = old[n_drop + j]   for j < L - n_drop
// Embeddings, positions, final norm and head are copied unchanged. Works for both architectures.
#include <cstdint>
#include <vector>

#include "granite/models/causal_lm.h"

namespace granite {

ModelConfig depth_upscaled_config(const ModelConfig& cfg, int64_t n_drop);
// Entry i is the source layer of new layer i.
std::vector<int64_t> depth_upscale_layer_map(int64_t num_layers, int64_t n_drop);
// A new model (same device and dtypes as `source`) with the stacked layers.
CausalLM depth_upscale(const CausalLMImpl& source, int64_t n_drop);

}  // namespace granite
