#include "granite/train/optimizer.h"

#include "granite/core/check.h"

namespace granite {

OptimizerConfig optimizer_config_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  OptimizerConfig c;
  c.beta1 = r.optional<double>("beta1", c.beta1);
  c.beta2 = r.optional<double>("beta2", c.beta2);
  c.eps = r.optional<double>("eps", c.eps);
  c.weight_decay = r.optional<double>("weight_decay", c.weight_decay);
  c.grad_clip = r.optional<double>("grad_clip", c.grad_clip);
  c.decay_embeddings = r.optional<bool>("decay_embeddings", c.decay_embeddings);
  c.decay_1d = r.optional<bool>("decay_1d", c.decay_1d);
  c.fused = r.optional<bool>("fused", c.fused);
  r.finish();
  GRANITE_CHECK(c.beta1 >= 0 && c.beta1 < 1, where, ": beta1 must be in [0, 1), got ", c.beta1);
  GRANITE_CHECK(c.beta2 >= 0 && c.beta2 < 1, where, ": beta2 must be in [0, 1), got ", c.beta2);
  GRANITE_CHECK(c.eps > 0, where, ": eps must be > 0, got ", c.eps);
  GRANITE_CHECK(c.weight_decay >= 0, where, ": weight_decay must be >= 0, got ", c.weight_decay);
  GRANITE_CHECK(c.grad_clip >= 0, where, ": grad_clip must be >= 0 (0 = off), got ", c.grad_clip);
  return c;
}

Json to_json(const OptimizerConfig& c) {
  return {{"beta1", c.beta1},         {"beta2", c.beta2},       {"eps", c.eps},
          {"weight_decay", c.weight_decay}, {"grad_clip", c.grad_clip}, {"decay_embeddings", c.decay_embeddings},
          {"decay_1d", c.decay_1d}, {"fused", c.fused}};
}

bool decays(const std::string& name, const torch::Tensor& p, const OptimizerConfig& c) {
  const bool embedding = name.find("embed_tokens") != std::string::npos || name.find(".wte.") != std::string::npos ||
                         name.find(".wpe.") != std::string::npos;
  if (embedding) return c.decay_embeddings;
  if (p.dim() < 2) return c.decay_1d;
  return true;
}

}  // namespace granite
