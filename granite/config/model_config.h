#pragma once
// ModelConfig: everything that fixes a Granite Code network's shape and numerics, for both families.
// Field names are the Hugging Face config.json spellings where HF has one (house rule: import is a straight copy);
// where the two HF families spell the same thing differently (rms_norm_eps / layer_norm_epsilon, n_embd /
// hidden_size) we keep one neutral name and hf_config.cpp does the mapping.
// Our own JSON form (configs/models/*.json) is strict: unknown keys and wrong types are errors.
#include <cstdint>
#include <string>

#include "granite/core/json.h"

namespace granite {

enum class Architecture {
  Llama,       // Granite-3B/8B-code: RMSNorm, RoPE, SwiGLU, MHA/GQA, biased linears (HF LlamaForCausalLM)
  GPTBigCode,  // Granite-20B/34B-code: LayerNorm, learned positions, GELU, MQA (HF GPTBigCodeForCausalLM)
};
// JSON spellings are HF's model_type strings: "llama", "gpt_bigcode".
std::string to_string(Architecture a);
Architecture architecture_from_string(const std::string& s, const std::string& where);

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  int64_t vocab_size = 49152;           // StarCoder tokenizer
  int64_t hidden_size = 0;              // C (HF gpt_bigcode: n_embd)
  int64_t intermediate_size = 0;        // FFN width (gpt_bigcode: n_inner; null there means 4*C)
  int64_t num_hidden_layers = 0;        // L (gpt_bigcode: n_layer)
  int64_t num_attention_heads = 0;      // H (gpt_bigcode: n_head)
  int64_t num_key_value_heads = 0;      // Hkv: H = MHA, 1 = MQA, else GQA (gpt_bigcode: multi_query ? 1 : H)
  int64_t head_dim = 0;                 // D; 0 means hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;  // context (gpt_bigcode: n_positions, the size of the wpe table)
  std::string hidden_act = "silu";      // llama: "silu"; gpt_bigcode: "gelu_pytorch_tanh" | "gelu_new" | "gelu"
  double norm_eps = 1e-5;               // rms_norm_eps (llama) / layer_norm_epsilon (gpt_bigcode)
  double rope_theta = 10000.0;          // llama only; 1e7 for the 128k models
  bool attention_bias = false;          // biases on q/k/v/o (Granite-code: true); gpt_bigcode always biased
  bool mlp_bias = false;                // biases on gate/up/down (Granite-code: true); gpt_bigcode always biased
  bool tie_word_embeddings = true;      // lm_head shares the token embedding (all Granite-code models)
  bool scale_attn_weights = true;       // gpt_bigcode: scores scaled by 1/sqrt(D) (false: unscaled)
  double attention_dropout = 0.0;       // on attention probabilities, training only (llama attention_dropout,
                                        // gpt_bigcode attn_pdrop)
  double resid_dropout = 0.0;           // gpt_bigcode resid_pdrop, after each residual branch, training only
  double embedding_dropout = 0.0;       // gpt_bigcode embd_pdrop, after the embeddings, training only
  double initializer_range = 0.02;      // std of the normal init for training from scratch
  int64_t bos_token_id = 0, eos_token_id = 0, pad_token_id = 0;  // <|endoftext|> in the StarCoder vocab
  std::string torch_dtype = "bfloat16";  // dtype the checkpoint is stored in ("float32" | "bfloat16" | "float16")

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // Throws naming the first inconsistent field and its value.
  void validate() const;
  // The same, with the message prefixed by where the config came from ("config.json: ...").
  void validate(const std::string& where) const;
};

// Parameter count computed from the shapes alone (no allocation): what make_model(cfg) would hold.
int64_t count_parameters(const ModelConfig& cfg);

// Our strict JSON form.
Json to_json(const ModelConfig& cfg);
ModelConfig model_config_from_json(const Json& j, const std::string& where);
ModelConfig load_model_config(const std::string& path);  // configs/models/*.json

bool operator==(const ModelConfig& a, const ModelConfig& b);
inline bool operator!=(const ModelConfig& a, const ModelConfig& b) { return !(a == b); }

}  // namespace granite
