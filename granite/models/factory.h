#pragma once
// make_model: a plain switch over the architecture (no registry, no static initialisers: house rule 7).
#include <functional>
#include <string>

#include "granite/models/causal_lm.h"

namespace granite {

// Builds the network with HF-style random init (normal(0, initializer_range), zero biases, unit norms;
// GPTBigCode c_proj scaled by 1/sqrt(2L) as HF does). Validates the config first. With initialize = false the
// parameters are left as allocated (for loaders that overwrite every one of them: saves the init pass).
CausalLM make_model(const ModelConfig& cfg, bool initialize = true);

// Linear and embedding weights ~ N(0, initializer_range), those `scaled_residual` names ~ N(0, initializer_range /
// sqrt(2 * num_layers)) (the GPT-2 scheme for residual-branch projections); biases 0, norm weights 1. Uses the
// global torch RNG.
void initialize_weights(CausalLMImpl& model, const std::function<bool(const std::string&)>& scaled_residual);

}  // namespace granite
