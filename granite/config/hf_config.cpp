#include "granite/config/hf_config.h"

#include "granite/core/check.h"
#include "granite/core/dtype.h"

namespace granite {

namespace {

// PretrainedConfig bookkeeping that transformers writes into every config.json and that does not change the network
// (generation defaults, task heads, framework flags). Accepted and ignored.
const char* const kHfIgnoredKeys[] = {
    "_name_or_path", "architectures", "transformers_version", "use_cache", "auto_map", "_attn_implementation_autoset",
    "attn_implementation", "return_dict", "output_hidden_states", "output_attentions", "torchscript",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size",
    "tie_encoder_decoder", "problem_type", "finetuning_task", "id2label", "label2id", "tokenizer_class", "prefix",
    "sep_token_id", "decoder_start_token_id", "task_specific_params", "pruned_heads", "max_length", "min_length",
    "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k",
    "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
    "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "tf_legacy_loss",
    "use_bfloat16",
    // numerics-only flags of HF's eager GPTBigCode attention (fp32 softmax); our attention always softmaxes in fp32
    "attention_softmax_in_fp32", "scale_attention_softmax_in_fp32",
    // training-time options HF keeps in the config that do not change the forward
    "gradient_checkpointing"};

void ignore_hf_bookkeeping(JsonReader& r) {
  for (const char* k : kHfIgnoredKeys) r.ignore(k);
}

// "bfloat16" from "torch_dtype" (4.x) or "dtype" (5.x); float32 when absent.
std::string read_dtype(JsonReader& r) {
  std::string dtype = r.optional<std::string>("dtype", "");
  std::string torch_dtype = r.optional<std::string>("torch_dtype", "");
  const std::string d = !dtype.empty() ? dtype : (!torch_dtype.empty() ? torch_dtype : "float32");
  const auto t = dtype_from_name(d);
  GRANITE_CHECK(t.has_value(), r.where(), ": dtype \"", d, "\" is not supported (float32, bfloat16, float16)");
  return dtype_name(*t);
}

// bos/eos/pad may be null, an int, or (newer models) a list whose first entry we use.
int64_t read_token_id(JsonReader& r, const std::string& key) {
  const Json* v = r.raw(key);
  if (v == nullptr || v->is_null()) return 0;
  if (v->is_array() && !v->empty() && (*v)[0].is_number_integer()) return (*v)[0].get<int64_t>();
  GRANITE_CHECK(v->is_number_integer(), r.where(), ": key '", key, "' must be a token id, got ", json_preview(*v));
  return v->get<int64_t>();
}

// rope_theta from "rope_theta" (4.x) or "rope_parameters": {"rope_theta", "rope_type"} (5.x); only the default
// (unscaled) RoPE is used by Granite Code, including the 128k models (theta 1e7, rope_scaling null).
double read_rope_theta(JsonReader& r) {
  double theta = r.optional<double>("rope_theta", 10000.0);
  if (const Json* p = r.raw("rope_parameters"); p != nullptr && !p->is_null()) {
    JsonReader rp(*p, r.where() + ": rope_parameters");
    theta = rp.optional<double>("rope_theta", theta);
    std::string type = rp.optional<std::string>("rope_type", "default");
    GRANITE_CHECK(type == "default", r.where(), ": rope_parameters.rope_type \"", type,
                  "\" is not supported (only \"default\")");
    rp.finish();
  }
  if (const Json* s = r.raw("rope_scaling"); s != nullptr && !s->is_null()) {
    GRANITE_FAIL(r.where(), ": rope_scaling ", json_preview(*s), " is not supported (Granite Code uses none)");
  }
  return theta;
}

ModelConfig llama_from_hf(JsonReader& r) {
  ModelConfig c;
  c.architecture = Architecture::Llama;
  c.vocab_size = r.required<int64_t>("vocab_size");
  c.hidden_size = r.required<int64_t>("hidden_size");
  c.intermediate_size = r.required<int64_t>("intermediate_size");
  c.num_hidden_layers = r.required<int64_t>("num_hidden_layers");
  c.num_attention_heads = r.required<int64_t>("num_attention_heads");
  c.num_key_value_heads = r.optional<int64_t>("num_key_value_heads", c.num_attention_heads);
  c.head_dim = r.optional<int64_t>("head_dim", 0);
  if (c.head_dim * c.num_attention_heads == c.hidden_size) c.head_dim = 0;  // the derived default, stored as 0
  c.max_position_embeddings = r.required<int64_t>("max_position_embeddings");
  c.hidden_act = r.optional<std::string>("hidden_act", "silu");
  c.norm_eps = r.optional<double>("rms_norm_eps", 1e-6);
  c.rope_theta = read_rope_theta(r);
  c.attention_bias = r.optional<bool>("attention_bias", false);
  c.mlp_bias = r.optional<bool>("mlp_bias", false);
  c.attention_dropout = r.optional<double>("attention_dropout", 0.0);
  c.tie_word_embeddings = r.optional<bool>("tie_word_embeddings", false);  // LlamaConfig's default
  int64_t tp = r.optional<int64_t>("pretraining_tp", 1);
  GRANITE_CHECK(tp == 1, r.where(), ": pretraining_tp (", tp, ") is not supported (must be 1)");
  return c;
}

ModelConfig gpt_bigcode_from_hf(JsonReader& r) {
  ModelConfig c;
  c.architecture = Architecture::GPTBigCode;
  c.vocab_size = r.required<int64_t>("vocab_size");
  c.hidden_size = r.has("n_embd") ? r.required<int64_t>("n_embd") : r.required<int64_t>("hidden_size");
  r.ignore("hidden_size");
  c.intermediate_size = r.optional<int64_t>("n_inner", 4 * c.hidden_size);  // HF: n_inner null means 4 * n_embd
  c.num_hidden_layers = r.required<int64_t>("n_layer");
  c.num_attention_heads = r.required<int64_t>("n_head");
  bool multi_query = r.optional<bool>("multi_query", true);
  c.num_key_value_heads = multi_query ? 1 : c.num_attention_heads;
  // transformers 5.x also writes num_key_value_heads; it must agree with multi_query.
  int64_t kv = r.optional<int64_t>("num_key_value_heads", c.num_key_value_heads);
  GRANITE_CHECK(kv == c.num_key_value_heads, r.where(), ": num_key_value_heads (", kv,
                ") contradicts multi_query (", multi_query ? "true" : "false", ")");
  c.max_position_embeddings = r.required<int64_t>("n_positions");
  c.hidden_act = r.optional<std::string>("activation_function", "gelu_pytorch_tanh");
  c.norm_eps = r.optional<double>("layer_norm_epsilon", 1e-5);
  c.scale_attn_weights = r.optional<bool>("scale_attn_weights", true);
  c.attention_dropout = r.optional<double>("attn_pdrop", 0.0);
  c.resid_dropout = r.optional<double>("resid_pdrop", 0.0);
  c.embedding_dropout = r.optional<double>("embd_pdrop", 0.0);
  c.attention_bias = c.mlp_bias = true;
  c.tie_word_embeddings = r.optional<bool>("tie_word_embeddings", true);  // PretrainedConfig's default
  bool cross = r.optional<bool>("add_cross_attention", false);
  GRANITE_CHECK(!cross, r.where(), ": add_cross_attention true is not supported");
  return c;
}

}  // namespace

ModelConfig model_config_from_hf(const Json& hf, const std::string& where) {
  JsonReader r(hf, where);
  std::string type = r.required<std::string>("model_type");
  ModelConfig c;
  if (type == "llama") {
    c = llama_from_hf(r);
  } else if (type == "gpt_bigcode") {
    c = gpt_bigcode_from_hf(r);
  } else {
    GRANITE_FAIL(where, ": model_type \"", type, "\" is not supported (expected \"llama\" or \"gpt_bigcode\")");
  }
  c.initializer_range = r.optional<double>("initializer_range", 0.02);
  c.bos_token_id = read_token_id(r, "bos_token_id");
  c.eos_token_id = read_token_id(r, "eos_token_id");
  c.pad_token_id = read_token_id(r, "pad_token_id");
  c.torch_dtype = read_dtype(r);
  ignore_hf_bookkeeping(r);
  r.finish();
  c.validate(where);
  return c;
}

ModelConfig load_hf_config(const std::string& path) { return model_config_from_hf(read_json_file(path), path); }

Json to_hf_json(const ModelConfig& c) {
  Json j;
  if (c.architecture == Architecture::Llama) {
    j = Json{{"architectures", {"LlamaForCausalLM"}},
             {"model_type", "llama"},
             {"vocab_size", c.vocab_size},
             {"hidden_size", c.hidden_size},
             {"intermediate_size", c.intermediate_size},
             {"num_hidden_layers", c.num_hidden_layers},
             {"num_attention_heads", c.num_attention_heads},
             {"num_key_value_heads", c.num_key_value_heads},
             {"head_dim", c.resolved_head_dim()},
             {"max_position_embeddings", c.max_position_embeddings},
             {"hidden_act", c.hidden_act},
             {"rms_norm_eps", c.norm_eps},
             {"rope_theta", c.rope_theta},
             {"rope_scaling", nullptr},
             {"attention_bias", c.attention_bias},
             {"mlp_bias", c.mlp_bias},
             {"attention_dropout", c.attention_dropout},
             {"pretraining_tp", 1}};
  } else {
    j = Json{{"architectures", {"GPTBigCodeForCausalLM"}},
             {"model_type", "gpt_bigcode"},
             {"vocab_size", c.vocab_size},
             {"n_embd", c.hidden_size},
             {"n_inner", c.intermediate_size},
             {"n_layer", c.num_hidden_layers},
             {"n_head", c.num_attention_heads},
             {"multi_query", c.num_key_value_heads == 1},
             {"n_positions", c.max_position_embeddings},
             {"activation_function", c.hidden_act},
             {"layer_norm_epsilon", c.norm_eps},
             {"scale_attn_weights", c.scale_attn_weights},
             {"attn_pdrop", c.attention_dropout},
             {"resid_pdrop", c.resid_dropout},
             {"embd_pdrop", c.embedding_dropout},
             {"attention_softmax_in_fp32", true},
             {"scale_attention_softmax_in_fp32", true}};
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["pad_token_id"] = c.pad_token_id;
  j["torch_dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  return j;
}

}  // namespace granite
