#pragma once
// NEFTune (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction Finetuning"), as Granite Code's
// instruction tuning used it (alpha 5): during training, uniform noise in [-m, m] with m = alpha / sqrt(T * d) is
// added to the input embeddings (B, T, d) -- T the sequence length, d the hidden size -- exactly as transformers'
// neftune_post_forward_hook does. Nothing at evaluation or generation.
#include <torch/types.h>

namespace granite {

torch::Tensor add_neftune_noise(const torch::Tensor& embeddings, double alpha);

}  // namespace granite
