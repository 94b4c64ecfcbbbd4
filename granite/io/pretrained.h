#pragma once
// Hugging Face model directories: config.json + model.safetensors, or shards listed in model.safetensors.index.json
// (plus tokenizer.json when present, used by the tokenizer).
// Loading checks the key sets both ways (a missing or an unexpected tensor is an error naming it and its file) and
// every shape against the config; dtypes are converted to the requested one.
// Saving writes a directory transformers loads directly (from_pretrained) with identical logits.
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "granite/io/safetensors.h"
#include "granite/models/causal_lm.h"

namespace granite {

struct LoadOptions {
  torch::Device device = torch::kCPU;
  // Parameter dtype. Undefined (default) = float32 on CPU, the checkpoint's torch_dtype elsewhere.
  c10::optional<torch::ScalarType> dtype;
};
CausalLM load_pretrained(const std::string& dir, const LoadOptions& options = {});

// The weight files of a model directory, opened (memory-mapped): tensor key -> the file holding it (one
// model.safetensors, or the shards listed in model.safetensors.index.json, each checked against the index).
std::map<std::string, std::shared_ptr<SafetensorsFile>> open_weights(const std::string& dir);

// Weights only, into an existing model (keys/shapes checked as above).
void load_weights(CausalLMImpl& model, const std::string& dir);

struct SaveOptions {
  c10::optional<torch::ScalarType> dtype;  // storage dtype; default: the parameters' own
  int64_t max_shard_bytes = int64_t(5) << 30;  // HF's default "5GB"; above it, shards + index
  bool overwrite = false;                      // replace an existing non-empty directory (atomically)
  std::vector<std::string> copy_files;         // extra files to place in the directory (tokenizer.json, ...)
};
void save_pretrained(const CausalLMImpl& model, const std::string& dir, const SaveOptions& options = {});

// The state dict under HF names (tied lm_head omitted, as HF saves it).
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(const CausalLMImpl& model);

}  // namespace granite
