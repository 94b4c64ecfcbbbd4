#include "granite/models/depth_upscale.h"

#include <map>

#include "granite/core/check.h"
#include "granite/models/factory.h"

namespace granite {

namespace {

// Splits "model.layers.12.mlp.up_proj.weight" / "transformer.h.3.ln_1.bias" into (prefix, 12, suffix); -1 for
// parameters outside the layer stack.
struct LayerKey {
  std::string prefix, suffix;
  int64_t layer = -1;
};
LayerKey parse_layer_key(const std::string& name) {
  for (const char* stack : {"model.layers.", "transformer.h."}) {
    const std::string s(stack);
    if (name.compare(0, s.size(), s) != 0) continue;
    size_t dot = name.find('.', s.size());
    GRANITE_CHECK(dot != std::string::npos, "malformed layer parameter name '", name, "'");
    return {s, name.substr(dot), std::stoll(name.substr(s.size(), dot - s.size()))};
  }
  return {};
}

}  // namespace

std::vector<int64_t> depth_upscale_layer_map(int64_t L, int64_t n_drop) {
  GRANITE_CHECK(n_drop >= 0 && n_drop < L, "depth up-scaling drops n_drop (", n_drop,
                ") layers from each copy; it must be in [0, num_hidden_layers (", L, "))");
  std::vector<int64_t> map;
  for (int64_t i = 0; i < L - n_drop; ++i) map.push_back(i);       // first copy minus its last n_drop layers
  for (int64_t j = n_drop; j < L; ++j) map.push_back(j);           // second copy minus its first n_drop layers
  return map;
}

ModelConfig depth_upscaled_config(const ModelConfig& cfg, int64_t n_drop) {
  ModelConfig out = cfg;
  out.num_hidden_layers = int64_t(depth_upscale_layer_map(cfg.num_hidden_layers, n_drop).size());
  return out;
}

CausalLM depth_upscale(const CausalLMImpl& source, int64_t n_drop) {
  const ModelConfig& cfg = source.config();
  auto map = depth_upscale_layer_map(cfg.num_hidden_layers, n_drop);
  auto target = make_model(depth_upscaled_config(cfg, n_drop), /*initialize=*/false);  // every parameter is set below
  std::map<std::string, torch::Tensor> src;
  for (const auto& item : source.named_parameters()) src[item.key()] = item.value();
  torch::NoGradGuard no_grad;
  for (auto& item : target->named_parameters()) {
    LayerKey k = parse_layer_key(item.key());
    std::string from = k.layer < 0 ? item.key() : k.prefix + std::to_string(map[k.layer]) + k.suffix;
    auto it = src.find(from);
    GRANITE_CHECK(it != src.end(), "depth up-scaling: source has no parameter '", from, "'");
    item.value().set_data(it->second.detach().clone());  // keeps the source's device and dtype
  }
  return target;
}

}  // namespace granite
