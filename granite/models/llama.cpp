#include "granite/models/llama.h"

#include <torch/nn/functional/linear.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "granite/kernels/fused_ops.h"
#include "granite/models/positions.h"
#include "granite/nn/attention.h"
#include "granite/nn/neftune.h"
#include "granite/nn/rotary.h"

namespace granite {

namespace nn = torch::nn;

namespace {
nn::Linear linear(int64_t in, int64_t out, bool bias) { return nn::Linear(nn::LinearOptions(in, out).bias(bias)); }
// l(x), by the decode GEMV kernel when it applies (granite/kernels/fused_ops.h).
torch::Tensor project(const nn::Linear& l, const torch::Tensor& x) { return kernels::linear(x, l->weight, l->bias); }
}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& cfg)
    : H_(cfg.num_attention_heads),
      Hkv_(cfg.num_key_value_heads),
      D_(cfg.resolved_head_dim()),
      dropout_(cfg.attention_dropout) {
  const int64_t C = cfg.hidden_size;
  q_proj = register_module("q_proj", linear(C, H_ * D_, cfg.attention_bias));
  k_proj = register_module("k_proj", linear(C, Hkv_ * D_, cfg.attention_bias));
  v_proj = register_module("v_proj", linear(C, Hkv_ * D_, cfg.attention_bias));
  o_proj = register_module("o_proj", linear(H_ * D_, C, cfg.attention_bias));
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> LlamaAttentionImpl::project_rope_cache(
    const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  torch::Tensor q, k, v;
  if (auto qkv = qkv_.forward(x); qkv.defined()) {  // packed (inference): column ranges of one GEMM's output
    q = qkv.narrow(-1, 0, H_ * D_);
    k = qkv.narrow(-1, H_ * D_, Hkv_ * D_);
    v = qkv.narrow(-1, (H_ + Hkv_) * D_, Hkv_ * D_);
  } else {
    q = project(q_proj, x), k = project(k_proj, x), v = project(v_proj, x);
  }
  q = q.view({B, T, H_, D_});     // (B, T, H, D)
  k = k.view({B, T, Hkv_, D_});   // (B, T, Hkv, D)
  v = v.view({B, T, Hkv_, D_});   // (B, T, Hkv, D)
  if (kernels::use_fused(q) && cache) {  // rotate, and write k and v into the cache, in one kernel
    const auto dst = cache->destination(layer, T);
    q = kernels::rope_into_cache(q, k, v, cos, sin, dst.keys, dst.values, dst.slots, dst.first).transpose(1, 2);
    std::tie(k, v) = cache->visible(layer, T);  // (B, Hkv, past + T, D)
    return {q, k, v};
  }
  if (kernels::use_fused(q)) {
    std::tie(q, k) = kernels::rope(q, k, cos, sin);
    q = q.transpose(1, 2);
    k = k.transpose(1, 2);
  } else {
    q = apply_rope(q.transpose(1, 2), cos, sin);  // (B, H, T, D)
    k = apply_rope(k.transpose(1, 2), cos, sin);  // (B, Hkv, T, D)
  }
  v = v.transpose(1, 2);                                  // (B, Hkv, T, D)
  if (cache) std::tie(k, v) = cache->append(layer, k, v);  // (B, Hkv, past + T, D)
  return {q, k, v};
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                          KVCache* cache, int64_t layer, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1);
  torch::Tensor q, k, v;
  // A decode step of one sequence: the packed projection, rope and the cache writes in one kernel.
  const auto [qkv_weight, qkv_bias] = T == 1 && cache ? qkv_.usable() : std::pair<torch::Tensor, torch::Tensor>{};
  if (qkv_weight.defined()) {
    const auto dst = cache->destination(layer, T);
    q = kernels::linear_rope_into_cache(x, qkv_weight, qkv_bias, H_, Hkv_, cos, sin, dst.keys, dst.values, dst.slots,
                                        dst.first);
  }
  if (q.defined()) {
    q = q.transpose(1, 2);                      // (B, H, 1, D)
    std::tie(k, v) = cache->visible(layer, T);  // (B, Hkv, past + 1, D)
  } else {
    std::tie(q, k, v) = project_rope_cache(x, cos, sin, cache, layer);
  }
  auto y = causal_attention(q, k, v, 1.0 / std::sqrt(double(D_)), is_training() ? dropout_ : 0.0,
                            AttentionBackend::Auto, mask);
  return project(o_proj, y.transpose(1, 2).reshape({B, T, H_ * D_}));  // (B, T, C)
}

LlamaMLPImpl::LlamaMLPImpl(const ModelConfig& cfg) : I_(cfg.intermediate_size) {
  const int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", linear(C, I, cfg.mlp_bias));
  up_proj = register_module("up_proj", linear(C, I, cfg.mlp_bias));
  down_proj = register_module("down_proj", linear(I, C, cfg.mlp_bias));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
  torch::Tensor gate, up;
  if (const auto [weight, bias] = gate_up_.usable(); weight.defined()) {  // packed (inference): one GEMM
    // one decode row: silu(gate) * up straight out of the GEMV; else the halves of the GEMM's output
    if (auto act = kernels::linear_swiglu(x, weight, bias); act.defined()) return project(down_proj, act);
    const auto gate_up = kernels::linear(x, weight, bias);
    gate = gate_up.narrow(-1, 0, I_);
    up = gate_up.narrow(-1, I_, I_);
  } else {
    gate = project(gate_proj, x);
    up = project(up_proj, x);
  }
  return project(down_proj, kernels::use_fused(gate) ? kernels::silu_mul(gate, up) : torch::silu(gate) * up);
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& cfg) {
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.norm_eps));
  self_attn = register_module("self_attn", LlamaAttention(cfg));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.norm_eps));
  mlp = register_module("mlp", LlamaMLP(cfg));
}

torch::Tensor LlamaDecoderLayerImpl::forward(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin,
                                             KVCache* cache, int64_t layer, const torch::Tensor& mask) {
  x = x + self_attn(input_layernorm(x), cos, sin, cache, layer, mask);
  return x + mlp(post_attention_layernorm(x));
}

std::pair<torch::Tensor, torch::Tensor> LlamaDecoderLayerImpl::forward_unsummed(
    const torch::Tensor& x, const torch::Tensor& delta, const torch::Tensor& cos, const torch::Tensor& sin,
    KVCache* cache, int64_t layer, const torch::Tensor& mask) {
  auto [residual, normed] = delta.defined() ? input_layernorm->add_forward(x, delta)
                                            : std::pair{x, input_layernorm(x)};
  auto [h, normed2] = post_attention_layernorm->add_forward(residual, self_attn(normed, cos, sin, cache, layer, mask));
  return {h, mlp(normed2)};
}

LlamaModelImpl::LlamaModelImpl(const ModelConfig& cfg) : D_(cfg.resolved_head_dim()), rope_theta_(cfg.rope_theta) {
  embed_tokens = register_module("embed_tokens", nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    blocks_.push_back(LlamaDecoderLayer(cfg));
    layers->push_back(blocks_.back());  // registered as "layers.<i>"
  }
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.norm_eps));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                      KVCache* cache, const torch::Tensor& mask) {
  auto h = embed_tokens(input_ids);                                              // (B, T, C)
  if (neftune_alpha > 0 && is_training() && !cache) h = add_neftune_noise(h, neftune_alpha);
  auto [cos, sin] = rope_cos_sin(position_ids, D_, rope_theta_, h.scalar_type());  // (B, T, D), once for all layers
  if (!runner.checkpoint && !runner.hooks && kernels::use_fused(h)) {
    // Inference with the fused kernels: each residual add happens inside the next RMSNorm's kernel (the same
    // values as the loop below).
    torch::Tensor delta;
    for (size_t i = 0; i < blocks_.size(); ++i) {
      std::tie(h, delta) = blocks_[i]->forward_unsummed(h, delta, cos, sin, cache, int64_t(i), mask);
    }
    if (cache) cache->advance(input_ids.size(1));
    return delta.defined() ? norm->add_forward(h, delta).second : norm(h);
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    // Captured by value: activation checkpointing calls this again in backward, after forward has returned.
    LlamaDecoderLayer block = blocks_[i];
    h = runner.run(i, [block, cos = cos, sin = sin, mask, i, cache](const torch::Tensor& x) mutable {
      return block(x, cos, sin, cache, int64_t(i), mask);
    }, h);
  }
  if (cache) cache->advance(input_ids.size(1));
  return norm(h);
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const ModelConfig& cfg) : CausalLMImpl(cfg) {
  model = register_module("model", LlamaModel(cfg));
  if (!cfg.tie_word_embeddings) {
    lm_head = register_module("lm_head", linear(cfg.hidden_size, cfg.vocab_size, /*bias=*/false));
  }
}

torch::Tensor LlamaForCausalLMImpl::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                                  const torch::Tensor& attention_mask, KVCache* cache) {
  // RoPE has no table to run off, so (as in HF) max_position_embeddings is advice, not a limit, for llama.
  auto positions = detail::resolve_positions(input_ids, position_ids, cache, std::numeric_limits<int64_t>::max());
  model->runner = {activation_checkpointing() && is_training() && !cache, block_hooks()};
  model->neftune_alpha = neftune_alpha_;
  return model(input_ids, positions, cache, attention_mask);
}

void LlamaForCausalLMImpl::pack_for_inference() {
  for (const auto& layer : *model->layers) layer->as<LlamaDecoderLayer>()->pack_for_inference();
}

// Tied: logits = h @ embed_tokens.weight^T (no separate parameter, as HF ties them).
torch::Tensor LlamaForCausalLMImpl::lm_head_weight() { return lm_head ? lm_head->weight : model->embed_tokens->weight; }

}  // namespace granite
