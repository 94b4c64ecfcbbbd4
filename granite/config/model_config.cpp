#include "granite/config/model_config.h"

#include "granite/core/check.h"

namespace granite {

std::string to_string(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "llama";
    case Architecture::GPTBigCode: return "gpt_bigcode";
  }
  return "?";
}

Architecture architecture_from_string(const std::string& s, const std::string& where) {
  if (s == "llama") return Architecture::Llama;
  if (s == "gpt_bigcode") return Architecture::GPTBigCode;
  GRANITE_FAIL(where, ": unknown architecture \"", s, "\" (expected \"llama\" or \"gpt_bigcode\")");
}

void ModelConfig::validate() const {
  auto positive = [](const char* name, int64_t v) { GRANITE_CHECK(v > 0, name, " (", v, ") must be positive"); };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("max_position_embeddings", max_position_embeddings);
  GRANITE_CHECK(head_dim >= 0, "head_dim (", head_dim, ") must be >= 0 (0 = hidden_size / num_attention_heads)");
  GRANITE_CHECK(num_attention_heads % num_key_value_heads == 0, "num_attention_heads (", num_attention_heads,
                ") must be divisible by num_key_value_heads (", num_key_value_heads, ")");
  if (head_dim == 0) {
    GRANITE_CHECK(hidden_size % num_attention_heads == 0, "hidden_size (", hidden_size,
                  ") must be divisible by num_attention_heads (", num_attention_heads, ") when head_dim is 0");
  }
  GRANITE_CHECK(norm_eps > 0, "norm_eps (", norm_eps, ") must be positive");
  for (auto [name, p] : {std::pair<const char*, double>{"attention_dropout", attention_dropout},
                         {"resid_dropout", resid_dropout},
                         {"embedding_dropout", embedding_dropout}}) {
    GRANITE_CHECK(p >= 0 && p < 1, name, " (", p, ") must be in [0, 1)");
  }
  GRANITE_CHECK(torch_dtype == "float32" || torch_dtype == "bfloat16" || torch_dtype == "float16",
                "torch_dtype (\"", torch_dtype, "\") must be \"float32\", \"bfloat16\" or \"float16\"");
  for (auto [name, id] : {std::pair<const char*, int64_t>{"bos_token_id", bos_token_id},
                          {"eos_token_id", eos_token_id},
                          {"pad_token_id", pad_token_id}}) {
    GRANITE_CHECK(id >= 0 && id < vocab_size, name, " (", id, ") must be in [0, vocab_size (", vocab_size, "))");
  }
  if (architecture == Architecture::Llama) {
    GRANITE_CHECK(hidden_act == "silu", "hidden_act (\"", hidden_act, "\") must be \"silu\" for llama (SwiGLU)");
    GRANITE_CHECK(rope_theta > 0, "rope_theta (", rope_theta, ") must be positive");
    GRANITE_CHECK(resolved_head_dim() % 2 == 0, "head_dim (", resolved_head_dim(), ") must be even for RoPE");
    GRANITE_CHECK(resid_dropout == 0 && embedding_dropout == 0,
                  "resid_dropout and embedding_dropout are gpt_bigcode options; llama uses attention_dropout only");
  } else {
    GRANITE_CHECK(hidden_act == "gelu_pytorch_tanh" || hidden_act == "gelu_new" || hidden_act == "gelu",
                  "hidden_act (\"", hidden_act, "\") must be \"gelu_pytorch_tanh\", \"gelu_new\" or \"gelu\" for gpt_bigcode");
    GRANITE_CHECK(num_key_value_heads == 1 || num_key_value_heads == num_attention_heads,
                  "gpt_bigcode supports MQA (num_key_value_heads 1) or MHA (num_key_value_heads = num_attention_heads ",
                  num_attention_heads, "), got ", num_key_value_heads);
    GRANITE_CHECK(head_dim == 0 || head_dim * num_attention_heads == hidden_size, "gpt_bigcode head_dim (", head_dim,
                  ") must be hidden_size / num_attention_heads (", hidden_size / num_attention_heads, ")");
    GRANITE_CHECK(attention_bias && mlp_bias, "gpt_bigcode linears always have biases (attention_bias and mlp_bias "
                  "must be true)");
  }
}

void ModelConfig::validate(const std::string& where) const {
  try {
    validate();
  } catch (const Error& e) {
    GRANITE_FAIL(where, ": ", e.what());
  }
}

int64_t count_parameters(const ModelConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, L = c.num_hidden_layers;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.resolved_head_dim();
  const int64_t lm_head = c.tie_word_embeddings ? 0 : V * C;
  if (c.architecture == Architecture::Llama) {
    int64_t attn = C * H * D + 2 * C * Hkv * D + H * D * C;
    if (c.attention_bias) attn += H * D + 2 * Hkv * D + C;
    int64_t mlp = 3 * C * I + (c.mlp_bias ? 2 * I + C : 0);
    int64_t norms = 2 * C;
    return V * C + L * (attn + mlp + norms) + C + lm_head;
  }
  const int64_t qkv_out = C + 2 * Hkv * D;
  int64_t attn = C * qkv_out + qkv_out + C * C + C;
  int64_t mlp = C * I + I + I * C + C;
  int64_t norms = 4 * C;
  return V * C + c.max_position_embeddings * C + L * (attn + mlp + norms) + 2 * C + lm_head;
}

Json to_json(const ModelConfig& c) {
  return Json{{"architecture", to_string(c.architecture)},
              {"vocab_size", c.vocab_size},
              {"hidden_size", c.hidden_size},
              {"intermediate_size", c.intermediate_size},
              {"num_hidden_layers", c.num_hidden_layers},
              {"num_attention_heads", c.num_attention_heads},
              {"num_key_value_heads", c.num_key_value_heads},
              {"head_dim", c.head_dim},
              {"max_position_embeddings", c.max_position_embeddings},
              {"hidden_act", c.hidden_act},
              {"norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta},
              {"attention_bias", c.attention_bias},
              {"mlp_bias", c.mlp_bias},
              {"tie_word_embeddings", c.tie_word_embeddings},
              {"scale_attn_weights", c.scale_attn_weights},
              {"attention_dropout", c.attention_dropout},
              {"resid_dropout", c.resid_dropout},
              {"embedding_dropout", c.embedding_dropout},
              {"initializer_range", c.initializer_range},
              {"bos_token_id", c.bos_token_id},
              {"eos_token_id", c.eos_token_id},
              {"pad_token_id", c.pad_token_id},
              {"torch_dtype", c.torch_dtype}};
}

ModelConfig model_config_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  ModelConfig c;
  c.architecture = architecture_from_string(r.required<std::string>("architecture"), where);
  c.vocab_size = r.required<int64_t>("vocab_size");
  c.hidden_size = r.required<int64_t>("hidden_size");
  c.intermediate_size = r.required<int64_t>("intermediate_size");
  c.num_hidden_layers = r.required<int64_t>("num_hidden_layers");
  c.num_attention_heads = r.required<int64_t>("num_attention_heads");
  c.num_key_value_heads = r.required<int64_t>("num_key_value_heads");
  c.head_dim = r.optional<int64_t>("head_dim", c.head_dim);
  c.max_position_embeddings = r.required<int64_t>("max_position_embeddings");
  c.hidden_act = r.optional<std::string>("hidden_act", c.architecture == Architecture::Llama ? "silu"
                                                                                             : "gelu_pytorch_tanh");
  c.norm_eps = r.optional<double>("norm_eps", c.norm_eps);
  c.rope_theta = r.optional<double>("rope_theta", c.rope_theta);
  c.attention_bias = r.required<bool>("attention_bias");
  c.mlp_bias = r.required<bool>("mlp_bias");
  c.tie_word_embeddings = r.optional<bool>("tie_word_embeddings", c.tie_word_embeddings);
  c.scale_attn_weights = r.optional<bool>("scale_attn_weights", c.scale_attn_weights);
  c.attention_dropout = r.optional<double>("attention_dropout", c.attention_dropout);
  c.resid_dropout = r.optional<double>("resid_dropout", c.resid_dropout);
  c.embedding_dropout = r.optional<double>("embedding_dropout", c.embedding_dropout);
  c.initializer_range = r.optional<double>("initializer_range", c.initializer_range);
  c.bos_token_id = r.optional<int64_t>("bos_token_id", c.bos_token_id);
  c.eos_token_id = r.optional<int64_t>("eos_token_id", c.eos_token_id);
  c.pad_token_id = r.optional<int64_t>("pad_token_id", c.pad_token_id);
  c.torch_dtype = r.optional<std::string>("torch_dtype", c.torch_dtype);
  r.ignore("_comment");  // configs/models/*.json carry their provenance here
  r.finish();
  c.validate(where);
  return c;
}

ModelConfig load_model_config(const std::string& path) { return model_config_from_json(read_json_file(path), path); }

bool operator==(const ModelConfig& a, const ModelConfig& b) { return to_json(a) == to_json(b); }

}  // namespace granite
