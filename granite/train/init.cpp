#include "granite/train/init.h"

#include <cmath>

namespace granite {

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

bool is_residual_projection(const std::string& name) {
  for (const char* suffix : {"self_attn.o_proj.weight", "mlp.down_proj.weight", "attn.c_proj.weight", "mlp.c_proj.weight"})
    if (ends_with(name, suffix)) return true;
  return false;
}

void init_for_pretraining(CausalLMImpl& model) {
  const ModelConfig& cfg = model.config();
  const double std = cfg.initializer_range;
  const double residual_std = std / std::sqrt(2.0 * double(cfg.num_hidden_layers));
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    const bool norm = name.find("norm") != std::string::npos || name.find(".ln_") != std::string::npos;
    if (ends_with(name, "bias")) {
      p.zero_();
    } else if (norm) {
      p.fill_(1.0);
    } else {
      p.normal_(0.0, is_residual_projection(name) ? residual_std : std);
    }
  }
}

}  // namespace granite
