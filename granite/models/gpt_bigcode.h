#pragma once
// GPTBigCode family = Granite-20B/34B-code (HF GPTBigCodeForCausalLM, StarCoder-style). Pre-norm decoder:
//   x = wte(ids) + wpe(pos);  h = x + attn(ln_1(x));  out = h + mlp(ln_2(h));  logits = lm_head(ln_f(out))
// attn.c_attn is one fused (C -> C + 2*Hkv*D) projection. Its output layout (HF modeling_gpt_bigcode.py):
//   MQA (multi_query, Hkv = 1):  [ q (H*D) | k (D) | v (D) ]
//   MHA (Hkv = H):               per head h: [ q_h (D) | k_h (D) | v_h (D) ], i.e. view (B, T, H, 3D)
// We keep the fused parameter (its HF key) and split the activations. GELU is the tanh approximation
// ("gelu_pytorch_tanh", per the 20B config fix cdea53c). lm_head is tied to wte.
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "granite/models/causal_lm.h"
#include "granite/nn/block_runner.h"

namespace granite {

class GPTBigCodeAttentionImpl : public torch::nn::Module {
 public:
  explicit GPTBigCodeAttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                        const torch::Tensor& mask);  // (B, T, C) -> (B, T, C)
  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};

 private:
  int64_t H_, Hkv_, D_;
  double scale_, attn_dropout_, resid_dropout_;
};
TORCH_MODULE(GPTBigCodeAttention);

class GPTBigCodeMLPImpl : public torch::nn::Module {
 public:
  explicit GPTBigCodeMLPImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};

 private:
  std::string approximate_;  // "tanh" or "none"
  double resid_dropout_;
};
TORCH_MODULE(GPTBigCodeMLP);

class GPTBigCodeBlockImpl : public torch::nn::Module {
 public:
  explicit GPTBigCodeBlockImpl(const ModelConfig& cfg);
  torch::Tensor forward(torch::Tensor x, KVCache* cache, int64_t layer, const torch::Tensor& mask);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  GPTBigCodeAttention attn{nullptr};
  GPTBigCodeMLP mlp{nullptr};
};
TORCH_MODULE(GPTBigCodeBlock);

class GPTBigCodeModelImpl : public torch::nn::Module {
 public:
  explicit GPTBigCodeModelImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids, KVCache* cache,
                        const torch::Tensor& mask);
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  BlockRunner runner;  // set by GPTBigCodeForCausalLM: activation checkpointing, block hooks
  double neftune_alpha = 0;  // set by GPTBigCodeForCausalLM

 private:
  std::vector<GPTBigCodeBlock> blocks_;  // the same modules as `h`, typed
  double embedding_dropout_;
};
TORCH_MODULE(GPTBigCodeModel);

class GPTBigCodeForCausalLMImpl : public CausalLMImpl {
 public:
  explicit GPTBigCodeForCausalLMImpl(const ModelConfig& cfg);
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                              const torch::Tensor& attention_mask = {}, KVCache* cache = nullptr) override;
  torch::Tensor lm_head_weight() override;
  std::string block_parameter_prefix(size_t block) const override {
    return "transformer.h." + std::to_string(block) + ".";
  }
  GPTBigCodeModel transformer{nullptr};
  torch::nn::Linear lm_head{nullptr};  // registered only when untied
};

}  // namespace granite
