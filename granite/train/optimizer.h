#pragma once
// The optimizer settings: AdamW (granite/train/adamw.h) with the Granite Code settings (granite-facts.md: beta1 0.9,
// beta2 0.95, weight decay 0.1; eps unstated in the paper, Megatron's 1e-8 here) and two parameter groups
// (granite/train/parameter_buffers.h): weight decay on the matrices of the linear layers only.
// Biases, norm weights (every 1-D parameter) and the embeddings (token and position tables; the tied LM head is the
// token table) are not decayed unless configured -- the usual GPT practice (nanoGPT, Megatron's no_wd for biases and
// norms), since decaying them pulls scales and rare-token rows toward zero for no regularisation benefit.
#include <torch/types.h>

#include <string>

#include "granite/core/json.h"

namespace granite {

struct OptimizerConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;           // global L2 norm; 0 = no clipping
  bool decay_embeddings = false;    // also decay the token / position embeddings
  bool decay_1d = false;            // also decay biases and norm weights
  bool fused = true;                // PyTorch's fused CUDA kernel where there is one (CUDA, LibTorch >= 2.0)
};
OptimizerConfig optimizer_config_from_json(const Json& j, const std::string& where);
Json to_json(const OptimizerConfig& config);

// True for the parameters that get weight decay (by HF name and shape, see above).
bool decays(const std::string& name, const torch::Tensor& parameter, const OptimizerConfig& config);

}  // namespace granite
