#pragma once
// The one interface both architectures implement: a causal LM whose single forward serves training, evaluation and
// cached generation (house rule 5). Parameter names are the HF checkpoint keys.
#include <torch/nn/functional/linear.h>
#include <torch/nn/module.h>

#include "granite/config/model_config.h"
#include "granite/nn/block_runner.h"
#include "granite/nn/kv_cache.h"

namespace granite {

class CausalLMImpl : public torch::nn::Module {
 public:
  // input_ids: (B, T) int64. position_ids: (B, T) int64, or undefined for [cache length, cache length + T).
  // cache: nullptr for a plain forward (training); otherwise keys/values are appended and attention covers the cache.
  // Returns logits (B, T, V) in the parameters' dtype.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                        KVCache* cache = nullptr) {
    return torch::nn::functional::linear(hidden_states(input_ids, position_ids, {}, cache), lm_head_weight());
  }
  // The trunk: the final hidden states (B, T, C), after the last norm -- what the LM head, or the fused training
  // loss (granite/train/objective_loss.h), consumes. attention_mask: undefined (causal), or (B, 1, T, T) bool, true
  // where a query may attend a key (granite::document_causal_mask for packed documents); with a cache holding L
  // tokens, (B, 1, T, L + T) over the cached keys and the new ones (left-padded batches, granite/generate). The
  // same mask may come additive (0 / -inf in the model's dtype, granite::additive_mask): converted once, not per layer.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                                      const torch::Tensor& attention_mask = {}, KVCache* cache = nullptr) = 0;
  // The LM head's (V, C) weight: lm_head.weight, or the input embedding when tied (as HF ties them). No bias.
  virtual torch::Tensor lm_head_weight() = 0;
  const ModelConfig& config() const { return config_; }
  // Recompute each decoder block's activations in backward instead of keeping them (training only; see
  // granite/nn/activation_checkpoint.h).
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }
  // Hooks run around each decoder block (not owned; nullptr: none). The fully sharded training mode installs its
  // own (granite/train/fully_sharded.h).
  void set_block_hooks(BlockHooks* hooks) { block_hooks_ = hooks; }
  BlockHooks* block_hooks() const { return block_hooks_; }
  // NEFTune noise on the input embeddings in training (granite/nn/neftune.h); 0: none.
  void set_neftune_alpha(double alpha) { neftune_alpha_ = alpha; }
  double neftune_alpha() const { return neftune_alpha_; }
  // Packs linears that share an input (Llama's q/k/v and gate/up) into one GEMM each for inference, without adding
  // memory (granite/nn/packed_linears.h); call it after the model is on its device and dtype. Training and
  // anything that re-points parameters still work (they use the separate matrices). GPTBigCode's are packed already.
  virtual void pack_for_inference() {}
  // The HF name prefix of decoder block i's parameters ("model.layers.3."): how parameters map to blocks.
  virtual std::string block_parameter_prefix(size_t block) const = 0;

 protected:
  explicit CausalLMImpl(ModelConfig cfg) : config_(std::move(cfg)) {}
  ModelConfig config_;
  bool activation_checkpointing_ = false;
  BlockHooks* block_hooks_ = nullptr;
  double neftune_alpha_ = 0;
};

using CausalLM = std::shared_ptr<CausalLMImpl>;

}  // namespace granite
