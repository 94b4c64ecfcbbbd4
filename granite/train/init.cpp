#include "granite/train/init.h"

#include "granite/core/strings.h"
#include "granite/models/factory.h"

namespace granite {

bool is_residual_projection(const std::string& name) {
  for (const char* suffix : {"self_attn.o_proj.weight", "mlp.down_proj.weight", "attn.c_proj.weight", "mlp.c_proj.weight"})
    if (ends_with(name, suffix)) return true;
  return false;
}

void init_for_pretraining(CausalLMImpl& model) { initialize_weights(model, is_residual_projection); }

}  // namespace granite
