#pragma once
// Llama family = Granite-3B/8B-code (HF LlamaForCausalLM). Pre-norm decoder:
//   h = x + o_proj(attn(input_layernorm(x)));   out = h + down_proj(silu(gate_proj(n)) * up_proj(n)), n = post_norm(h)
// Granite-code sets attention_bias and mlp_bias (all seven linears biased) and ties lm_head to embed_tokens.
// Module names are the HF checkpoint keys: model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
// post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head (absent when tied).
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <tuple>
#include <vector>

#include "granite/models/causal_lm.h"
#include "granite/nn/block_runner.h"
#include "granite/nn/packed_linears.h"
#include "granite/nn/rms_norm.h"

namespace granite {

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const ModelConfig& cfg);
  // x (B, T, C); cos/sin (B, T, D) -> (B, T, C)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, KVCache* cache,
                        int64_t layer, const torch::Tensor& mask);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  void pack_for_inference() { qkv_ = PackedLinears({q_proj, k_proj, v_proj}); }

 private:
  // q (B, H, T, D) rotated, and k, v (B, Hkv, past + T, D) with the T new positions in the cache when there is one.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> project_rope_cache(const torch::Tensor& x,
                                                                             const torch::Tensor& cos,
                                                                             const torch::Tensor& sin, KVCache* cache,
                                                                             int64_t layer);

  int64_t H_, Hkv_, D_;
  double dropout_;
  PackedLinears qkv_;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // SwiGLU
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  void pack_for_inference() { gate_up_ = PackedLinears({gate_proj, up_proj}); }

 private:
  int64_t I_;
  PackedLinears gate_up_;
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const ModelConfig& cfg);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin, KVCache* cache,
                        int64_t layer, const torch::Tensor& mask);
  // The same layer with its residual adds left to the next RMSNorm's kernel (RMSNorm::add_forward), for inference:
  // the input is x + delta (delta undefined: x alone) and the output h + mlp_out is returned as {h, mlp_out}.
  std::pair<torch::Tensor, torch::Tensor> forward_unsummed(const torch::Tensor& x, const torch::Tensor& delta,
                                                           const torch::Tensor& cos, const torch::Tensor& sin,
                                                           KVCache* cache, int64_t layer, const torch::Tensor& mask);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  void pack_for_inference() {
    self_attn->pack_for_inference();
    mlp->pack_for_inference();
  }
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const ModelConfig& cfg);
  // Final hidden states (B, T, C). mask: see CausalLMImpl::hidden_states.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids, KVCache* cache,
                        const torch::Tensor& mask);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  BlockRunner runner;  // set by LlamaForCausalLM: activation checkpointing, block hooks
  double neftune_alpha = 0;  // set by LlamaForCausalLM

 private:
  std::vector<LlamaDecoderLayer> blocks_;  // the same modules as `layers`, typed (no casts in forward)
  int64_t D_;
  double rope_theta_;
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public CausalLMImpl {
 public:
  explicit LlamaForCausalLMImpl(const ModelConfig& cfg);
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                              const torch::Tensor& attention_mask = {}, KVCache* cache = nullptr) override;
  torch::Tensor lm_head_weight() override;
  void pack_for_inference() override;
  std::string block_parameter_prefix(size_t block) const override {
    return "model.layers." + std::to_string(block) + ".";
  }
  LlamaModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // registered only when embeddings are untied
};

}  // namespace granite
