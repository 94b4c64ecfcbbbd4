#pragma once
// make_model: a plain switch over the architecture (no registry, no static initialisers: house rule 7).
#include "granite/models/causal_lm.h"

namespace granite {

// Builds the network with HF-style random init (normal(0, initializer_range), zero biases, unit norms;
// GPTBigCode c_proj scaled by 1/sqrt(2L) as HF does). Validates the config first. With initialize = false the
// parameters are left as allocated (for loaders that overwrite every one of them: saves the init pass).
CausalLM make_model(const ModelConfig& cfg, bool initialize = true);

}  // namespace granite
