#pragma once
// Training checkpoints. Each is a directory <output_dir>/checkpoints/step-NNNNNNNN that is directly a Hugging Face
// model directory (config.json + model.safetensors, tokenizer.json beside them: granite-generate and transformers
// load it as is) plus what resuming needs:
//   optimizer.safetensors the AdamW state by parameter name (exp_avg.<name>, exp_avg_sq.<name>, and master.<name>
//                         -- the fp32 master weights -- with mixed precision), the step count in the metadata;
//                         readable from Python, and independent of how parameters are grouped or sharded
//   training_state.json   step, token count, data-loader state, RNG state, the run's config, counters
//   COMPLETE              written last: a directory without it is not a checkpoint
// Writing: everything goes into a temporary sibling directory, each file fsync'ed, COMPLETE last, then one rename()
// and an fsync of the parent -- a crash at any point leaves either the previous checkpoints alone or a new complete
// one. Older checkpoints beyond keep_last are removed only after the new one is in place.

#include <optional>
#include <string>
#include <vector>

#include "granite/core/json.h"
#include "granite/models/causal_lm.h"
#include "granite/dist/communicator.h"
#include "granite/io/pretrained.h"
#include "granite/train/adamw.h"

namespace granite {

std::string checkpoint_dir(const std::string& output_dir, int64_t step);

struct CheckpointFiles {
  std::vector<std::string> copy;  // extra files placed in the directory (tokenizer.json, tokenizer_config.json)
};

// Returns the checkpoint's directory.
std::string save_checkpoint(const std::string& output_dir, int64_t step, const CausalLMImpl& model,
                            const AdamW& optimizer, const Json& training_state,
                            const CheckpointFiles& files, int64_t keep_last);

// Fully sharded runs (a collective: every rank calls it, with the same arguments): each rank writes its pieces of
// the master weights and moments (state-RRRRR-of-WWWWW.safetensors, granite/train/checkpoint_state.h), rank 0
// config.json (torch_dtype = compute_dtype), the tokenizer files, training_state.json and COMPLETE, into one
// temporary directory published by one rename as above. No rank ever holds the whole state, so the output directory
// must be on a file system every rank sees. `granite-consolidate` turns such a checkpoint into a model directory.
std::string save_sharded_checkpoint(const std::string& output_dir, int64_t step, const CausalLMImpl& model,
                                    const ParameterBuffers& params, AdamW& optimizer, c10::ScalarType compute_dtype,
                                    const Json& training_state, const CheckpointFiles& files, int64_t keep_last,
                                    Communicator& comm);

// The complete checkpoint with the highest step under <output_dir>/checkpoints, if any.
std::optional<std::string> latest_checkpoint(const std::string& output_dir);

// Loads weights and optimizer state into an already built model/optimizer of the same config (a checkpoint of a
// different model config or precision policy, or a missing/corrupt file, is an error naming it); returns
// training_state.json.
Json load_checkpoint(const std::string& dir, CausalLMImpl& model, AdamW& optimizer);

// Resuming in any sharding mode from either layout (whole or sharded, any number of ranks): weights, master,
// moments and step count, after the model config check; returns training_state.json.
Json resume_checkpoint(const std::string& dir, CausalLMImpl& model, ParameterBuffers& params, AdamW& optimizer);

// A complete checkpoint of this model's config (torch_dtype aside), or an error naming the difference.
void check_checkpoint_config(const std::string& dir, const CausalLMImpl& model);

// Whether `dir` is a checkpoint of a fully sharded run (state-*-of-*.safetensors instead of model weights).
bool is_sharded_checkpoint(const std::string& dir);
// A model from a model directory (load_pretrained), or from a sharded checkpoint (its master weights, in the
// dtype and on the device of `options` as load_pretrained chooses them): what phase 2 and granite-sft start from,
// what granite-generate loads, and how granite-convert consolidates a sharded checkpoint into a model directory.
CausalLM load_model_or_checkpoint(const std::string& dir, const LoadOptions& options = {});

// Starting a new run from a checkpoint (phase 2 from phase 1): its fp32 master weights, when it has them (a
// mixed-precision run saved bf16 model weights), replace the model directory's rounded ones. Returns whether it did.
bool load_master_weights(const std::string& dir, ParameterBuffers& params);

}  // namespace granite
