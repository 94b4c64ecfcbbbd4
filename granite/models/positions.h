#pragma once
// Default position ids for a forward over T new tokens after `past` cached ones, with the checks both families share.
#include <torch/types.h>

#include <limits>

#include "granite/core/check.h"
#include "granite/nn/kv_cache.h"

namespace granite::detail {

// input_ids (B, T); returns position_ids (B, T) int64 on input_ids' device: the given ones, or [past, past + T).
inline torch::Tensor resolve_positions(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                       const KVCache* cache, int64_t max_positions) {
  GRANITE_CHECK(input_ids.dim() == 2, "input_ids must be (batch, seq), got shape ", input_ids.sizes());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = cache ? cache->length() : 0;
  if (position_ids.defined()) {
    GRANITE_CHECK(position_ids.sizes() == input_ids.sizes(), "position_ids shape ", position_ids.sizes(),
                  " must equal input_ids shape ", input_ids.sizes());
    // (Not in a cache's static mode: reading the range back would sync the device inside a CUDA graph capture;
    // the static decoder checked the range on the host.)
    if (max_positions < std::numeric_limits<int64_t>::max() && position_ids.numel() > 0 &&
        !(cache && cache->static_mode())) {
      const int64_t top = position_ids.max().item<int64_t>(), bottom = position_ids.min().item<int64_t>();
      GRANITE_CHECK(bottom >= 0 && top < max_positions, "position_ids span [", bottom, ", ", top,
                    "] but the position table has ", max_positions, " entries");
    }
    return position_ids.to(input_ids.device(), torch::kInt64);
  }
  GRANITE_CHECK(past + T <= max_positions, "sequence of ", past + T, " tokens exceeds max_position_embeddings (",
                max_positions, ")");
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(input_ids.device());
  return torch::arange(past, past + T, opts).unsqueeze(0).expand({B, T});
}

}  // namespace granite::detail
