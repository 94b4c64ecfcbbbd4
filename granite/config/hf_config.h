#pragma once
// Hugging Face config.json <-> ModelConfig. The only place that knows HF key spellings.
// Reads what transformers 4.x writes ("rope_theta", "torch_dtype") and 5.x ("rope_parameters", "dtype"), for
// model_type "llama" and "gpt_bigcode". HF bookkeeping keys (transformers_version, architectures, use_cache, ...) are
// accepted and ignored; a key we do not know, or a value we cannot honour (rope_scaling, pretraining_tp != 1, a
// non-silu llama activation, ...), is an error naming the key and value, never silently dropped.
#include <string>

#include "granite/config/model_config.h"

namespace granite {

ModelConfig model_config_from_hf(const Json& hf, const std::string& where);
ModelConfig load_hf_config(const std::string& config_json_path);
// config.json that transformers 4.41+ and 5.x load as LlamaForCausalLM / GPTBigCodeForCausalLM.
Json to_hf_json(const ModelConfig& cfg);

}  // namespace granite
