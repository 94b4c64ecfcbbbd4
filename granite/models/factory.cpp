#include "granite/models/factory.h"

#include <cmath>

#include "granite/core/check.h"
#include "granite/models/gpt_bigcode.h"
#include "granite/models/llama.h"

namespace granite {

namespace {

// HF-style initialisation (PreTrainedModel._init_weights of both families): Linear and Embedding weights
// ~ N(0, initializer_range), biases 0, norm weights 1 / biases 0. For GPTBigCode, every c_proj (attention output and
// MLP output, the residual-branch projections) uses std / sqrt(2 * n_layer): the GPT-2 scheme HF and Megatron use.
void init_weights(CausalLMImpl& model) {
  const ModelConfig& cfg = model.config();
  const double std = cfg.initializer_range;
  const double proj_std = std / std::sqrt(2.0 * double(cfg.num_hidden_layers));
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    const bool is_norm = name.find("norm") != std::string::npos || name.find(".ln_") != std::string::npos;
    if (is_norm) {
      p.fill_(name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0 ? 0.0 : 1.0);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      p.zero_();
    } else if (cfg.architecture == Architecture::GPTBigCode && name.find(".c_proj.weight") != std::string::npos) {
      p.normal_(0.0, proj_std);
    } else {
      p.normal_(0.0, std);
    }
  }
}

}  // namespace

CausalLM make_model(const ModelConfig& cfg, bool initialize) {
  cfg.validate();
  CausalLM model;
  switch (cfg.architecture) {
    case Architecture::Llama: model = std::make_shared<LlamaForCausalLMImpl>(cfg); break;
    case Architecture::GPTBigCode: model = std::make_shared<GPTBigCodeForCausalLMImpl>(cfg); break;
  }
  if (initialize) init_weights(*model);
  return model;
}

}  // namespace granite
