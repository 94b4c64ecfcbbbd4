#pragma once
// One training run's settings, strict JSON (unknown keys are errors naming the key), shared by granite-pretrain and
// the instruction-tuning app:
//   {"model": "../models/tiny-llama.json",          a model config file, or
//    "init_from": "runs/phase1/checkpoints/step-..", a model directory (phase 2, fine-tuning) -- one of the two
//    "tokenizer": "../../data/tokenizers/starcoder/tokenizer.json",
//    "data": {...LoaderConfig...},  "eval_data": {...LoaderConfig...} (optional, held-out shards),
//    "optimizer": {...OptimizerConfig...}, "schedule": {...ScheduleConfig...},
//    "train": {"steps", "grad_accum", "alpha", "seed", "document_mask", "activation_checkpointing", "neftune_alpha",
//              "device",
//              "dtype", "master_dtype", "sharding", "log_every",
//              "eval_every", "eval_batches", "max_skipped_steps", "peak_flops"},
//    "checkpoint": {"save_every", "keep_last", "at_end"},
//    "output_dir": "runs/tiny"}
// Relative paths are resolved against the directory of the config file (so a config works from any directory).
// --set key.sub=value overrides (apply_override) go into the JSON before it is read.
#include <cstdint>
#include <optional>
#include <string>

#include "granite/core/json.h"
#include "granite/data/packed_loader.h"
#include "granite/train/lr_schedule.h"
#include "granite/train/optimizer.h"

namespace granite {

struct TrainConfig {
  std::string model_config;  // path to a model config (random init), or
  std::string init_from;     // path to a model directory (weights)
  std::string tokenizer;
  LoaderConfig data;
  std::optional<LoaderConfig> eval_data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  int64_t steps = 100;
  int64_t grad_accum = 1;      // micro-batches per step (per rank)
  double alpha = 0.5;          // CLM weight of the loss (1 = no FIM term)
  uint64_t seed = 42;          // model initialisation (the data has its own seed)
  bool document_mask = true;   // attention and positions per packed document (false: plain causal rows, faster)
  bool activation_checkpointing = false;  // recompute each block's activations in backward (less memory)
  double neftune_alpha = 0;    // NEFTune noise on the input embeddings in training (instruction tuning: 5)
  std::string device = "cpu";  // cpu | cuda | cuda:N
  // Precision policy: parameters, activations and their gradients in `dtype` (float32 | bfloat16); master weights,
  // accumulated gradients and AdamW moments in `master_dtype` (float32, or the same as dtype: pure bf16 training).
  std::string dtype = "float32";
  std::string master_dtype = "float32";
  // Data parallelism: "none" (every rank holds everything, DDP), "optimizer" (ZeRO-1: AdamW moments and fp32
  // master sharded) or "full" (FSDP / ZeRO-3: parameters, gradients and optimizer state sharded per block).
  std::string sharding = "none";
  Json app_sections = Json::object();  // sections read by the app, not here (train_config_from_json)
  int64_t log_every = 1;
  int64_t eval_every = 0;      // 0 = no validation
  int64_t eval_batches = 4;
  int64_t max_skipped_steps = 10;  // consecutive non-finite steps before the run stops
  double peak_flops = 0;       // per device, for MFU; 0 = 989e12 on CUDA (H100 bf16 dense), none on CPU
  int64_t save_every = 100;    // 0 = only at the end
  int64_t keep_last = 3;
  bool save_at_end = true;     // false: no checkpoint when the last step is reached (benchmarks)
  std::string output_dir = "runs/default";
};

// `where` names the file in errors; `base_dir` resolves relative paths.
// app_sections: top-level sections another app reads itself (instruction tuning: "data", "template"); they are
// kept verbatim in TrainConfig::app_sections, and without "data" here the packed loader settings stay default.
TrainConfig train_config_from_json(const Json& j, const std::string& where, const std::string& base_dir,
                                   const std::vector<std::string>& app_sections = {});
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});
Json to_json(const TrainConfig& config);

// "train.steps=200" -> j["train"]["steps"] = 200 (the value parsed as JSON when it is valid JSON, else a string).
// Missing sections are created; a misspelt key is then an unknown key for the strict reader, which names it.
void apply_override(Json& j, const std::string& assignment);

}  // namespace granite
