#pragma once
// Weight initialisation for pretraining from scratch (GPT-2 / Megatron-LM, which Granite Code was trained with):
//   weights of linear layers and embeddings ~ N(0, initializer_range)   (0.02 in the Granite configs)
//   residual-branch output projections      ~ N(0, initializer_range / sqrt(2 * num_layers))
//       Llama family:      self_attn.o_proj, mlp.down_proj
//       GPTBigCode family: attn.c_proj, mlp.c_proj
//   biases 0, norm weights 1 (norm biases 0)
// The scaling keeps the residual stream's variance from growing with depth: each of the 2L branches adds a term of
// variance ~ 1/(2L) instead of ~1 (Radford et al. 2019, GPT-2 section 2.3; Megatron-LM's scaled_init_method_normal).
// HF's own init (make_model) scales GPTBigCode's c_proj the same way but not Llama's projections.
#include "granite/models/causal_lm.h"

namespace granite {

// Re-initialises every parameter of `model` in place (uses the global torch RNG: seed it first).
void init_for_pretraining(CausalLMImpl& model);
bool is_residual_projection(const std::string& parameter_name);

}  // namespace granite
