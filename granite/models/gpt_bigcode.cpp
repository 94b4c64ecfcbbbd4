#include "granite/models/gpt_bigcode.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/linear.h>

#include <cmath>

#include "granite/models/positions.h"
#include "granite/nn/attention.h"
#include "granite/nn/neftune.h"

namespace granite {

namespace nn = torch::nn;

namespace {
nn::LayerNorm layer_norm(const ModelConfig& cfg) {
  return nn::LayerNorm(nn::LayerNormOptions({cfg.hidden_size}).eps(cfg.norm_eps));
}
}  // namespace

GPTBigCodeAttentionImpl::GPTBigCodeAttentionImpl(const ModelConfig& cfg)
    : H_(cfg.num_attention_heads),
      Hkv_(cfg.num_key_value_heads),
      D_(cfg.resolved_head_dim()),
      scale_(cfg.scale_attn_weights ? 1.0 / std::sqrt(double(cfg.resolved_head_dim())) : 1.0),
      attn_dropout_(cfg.attention_dropout),
      resid_dropout_(cfg.resid_dropout) {
  const int64_t C = cfg.hidden_size;
  c_attn = register_module("c_attn", nn::Linear(C, C + 2 * Hkv_ * D_));
  c_proj = register_module("c_proj", nn::Linear(C, C));
}

torch::Tensor GPTBigCodeAttentionImpl::forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                               const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), C = H_ * D_;
  auto qkv = c_attn(x);  // (B, T, C + 2*Hkv*D)
  torch::Tensor q, k, v;
  if (Hkv_ == 1) {  // MQA: [q | k | v]
    q = qkv.narrow(-1, 0, C).view({B, T, H_, D_}).transpose(1, 2);        // (B, H, T, D)
    k = qkv.narrow(-1, C, D_).view({B, T, 1, D_}).transpose(1, 2);       // (B, 1, T, D)
    v = qkv.narrow(-1, C + D_, D_).view({B, T, 1, D_}).transpose(1, 2);  // (B, 1, T, D)
  } else {          // MHA: per head [q_h | k_h | v_h]
    auto heads = qkv.view({B, T, H_, 3 * D_}).transpose(1, 2);           // (B, H, T, 3D)
    q = heads.narrow(-1, 0, D_);
    k = heads.narrow(-1, D_, D_);
    v = heads.narrow(-1, 2 * D_, D_);
  }
  if (cache) std::tie(k, v) = cache->append(layer, k, v);
  auto y = causal_attention(q, k, v, scale_, is_training() ? attn_dropout_ : 0.0, AttentionBackend::Auto, mask);
  y = c_proj(y.transpose(1, 2).reshape({B, T, C}));
  return resid_dropout_ > 0 ? torch::dropout(y, resid_dropout_, is_training()) : y;
}

GPTBigCodeMLPImpl::GPTBigCodeMLPImpl(const ModelConfig& cfg)
    : approximate_(cfg.hidden_act == "gelu" ? "none" : "tanh"), resid_dropout_(cfg.resid_dropout) {
  c_fc = register_module("c_fc", nn::Linear(cfg.hidden_size, cfg.intermediate_size));
  c_proj = register_module("c_proj", nn::Linear(cfg.intermediate_size, cfg.hidden_size));
}

torch::Tensor GPTBigCodeMLPImpl::forward(const torch::Tensor& x) {
  auto y = c_proj(torch::gelu(c_fc(x), approximate_));
  return resid_dropout_ > 0 ? torch::dropout(y, resid_dropout_, is_training()) : y;
}

GPTBigCodeBlockImpl::GPTBigCodeBlockImpl(const ModelConfig& cfg) {
  ln_1 = register_module("ln_1", layer_norm(cfg));
  attn = register_module("attn", GPTBigCodeAttention(cfg));
  ln_2 = register_module("ln_2", layer_norm(cfg));
  mlp = register_module("mlp", GPTBigCodeMLP(cfg));
}

torch::Tensor GPTBigCodeBlockImpl::forward(torch::Tensor x, KVCache* cache, int64_t layer, const torch::Tensor& mask) {
  x = x + attn(ln_1(x), cache, layer, mask);
  return x + mlp(ln_2(x));
}

GPTBigCodeModelImpl::GPTBigCodeModelImpl(const ModelConfig& cfg) : embedding_dropout_(cfg.embedding_dropout) {
  wte = register_module("wte", nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  wpe = register_module("wpe", nn::Embedding(cfg.max_position_embeddings, cfg.hidden_size));
  h = register_module("h", nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    blocks_.push_back(GPTBigCodeBlock(cfg));
    h->push_back(blocks_.back());  // registered as "h.<i>"
  }
  ln_f = register_module("ln_f", layer_norm(cfg));
}

torch::Tensor GPTBigCodeModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                           KVCache* cache, const torch::Tensor& mask) {
  auto tokens = wte(input_ids);  // (B, T, C)
  if (neftune_alpha > 0 && is_training() && !cache) tokens = add_neftune_noise(tokens, neftune_alpha);
  auto x = tokens + wpe(position_ids);
  if (embedding_dropout_ > 0) x = torch::dropout(x, embedding_dropout_, is_training());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    // Captured by value: activation checkpointing calls this again in backward, after forward has returned.
    GPTBigCodeBlock block = blocks_[i];
    x = runner.run(i, [block, mask, i, cache](const torch::Tensor& h) mutable {
      return block(h, cache, int64_t(i), mask);
    }, x);
  }
  if (cache) cache->advance(input_ids.size(1));
  return ln_f(x);
}

GPTBigCodeForCausalLMImpl::GPTBigCodeForCausalLMImpl(const ModelConfig& cfg) : CausalLMImpl(cfg) {
  transformer = register_module("transformer", GPTBigCodeModel(cfg));
  if (!cfg.tie_word_embeddings) {
    lm_head = register_module("lm_head", nn::Linear(nn::LinearOptions(cfg.hidden_size, cfg.vocab_size).bias(false)));
  }
}

torch::Tensor GPTBigCodeForCausalLMImpl::hidden_states(const torch::Tensor& input_ids,
                                                       const torch::Tensor& position_ids,
                                                       const torch::Tensor& attention_mask, KVCache* cache) {
  // Learned positions: the wpe table is a hard limit.
  auto positions = detail::resolve_positions(input_ids, position_ids, cache, config_.max_position_embeddings);
  transformer->runner = {activation_checkpointing() && is_training() && !cache, block_hooks()};
  transformer->neftune_alpha = neftune_alpha_;
  return transformer(input_ids, positions, cache, attention_mask);
}

torch::Tensor GPTBigCodeForCausalLMImpl::lm_head_weight() { return lm_head ? lm_head->weight : transformer->wte->weight; }

}  // namespace granite
