#include "granite/models/factory.h"

#include <cmath>

#include "granite/core/check.h"
#include "granite/core/strings.h"
#include "granite/models/gpt_bigcode.h"
#include "granite/models/llama.h"

namespace granite {

namespace {

}  // namespace

void initialize_weights(CausalLMImpl& model, const std::function<bool(const std::string&)>& scaled_residual) {
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
      p.normal_(0.0, scaled_residual(name) ? residual_std : std);
    }
  }
}

CausalLM make_model(const ModelConfig& cfg, bool initialize) {
  cfg.validate();
  CausalLM model;
  switch (cfg.architecture) {
    case Architecture::Llama: model = std::make_shared<LlamaForCausalLMImpl>(cfg); break;
    case Architecture::GPTBigCode: model = std::make_shared<GPTBigCodeForCausalLMImpl>(cfg); break;
  }
  if (initialize) {
    // HF's PreTrainedModel._init_weights for both families: only GPTBigCode scales its c_proj (both of them).
    const bool bigcode = cfg.architecture == Architecture::GPTBigCode;
    initialize_weights(*model, [bigcode](const std::string& name) {
      return bigcode && name.find(".c_proj.weight") != std::string::npos;
    });
  }
  return model;
}

}  // namespace granite
