#include "granite/io/pretrained.h"

#include <unistd.h>

#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>

#include "granite/config/hf_config.h"
#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/dtype.h"
#include "granite/core/format.h"
#include "granite/core/remove_tree.h"
#include "granite/io/safetensors.h"
#include "granite/models/factory.h"

namespace granite {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";


// HF checkpoints may carry these; transformers ignores them on load, and so do we.
bool ignorable_extra_key(const std::string& key, const ModelConfig& cfg) {
  if (key == "lm_head.weight" && cfg.tie_word_embeddings) return true;  // tied: the embedding is the head
  const std::string inv_freq = "rotary_emb.inv_freq";                  // a buffer old Llama checkpoints saved
  return key.size() >= inv_freq.size() && key.compare(key.size() - inv_freq.size(), inv_freq.size(), inv_freq) == 0;
}

}  // namespace

std::map<std::string, std::shared_ptr<SafetensorsFile>> open_weights(const std::string& dir) {
  const fs::path index_path = fs::path(dir) / kIndexFile, single_path = fs::path(dir) / kSingleFile;
  std::map<std::string, std::shared_ptr<SafetensorsFile>> where;
  if (fs::exists(index_path)) {
    Json index = read_json_file(index_path.string());
    GRANITE_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
                  index_path.string(), ": missing object 'weight_map'");
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      GRANITE_CHECK(it->is_string(), index_path.string(), ": weight_map['", it.key(), "'] must be a file name, got ",
                    json_preview(*it));
      const std::string file = it->get<std::string>();
      GRANITE_CHECK(file.find('/') == std::string::npos && file != "..", index_path.string(), ": weight_map['",
                    it.key(), "'] = \"", file, "\" must name a file inside the model directory");
      auto& shard = shards[file];
      if (!shard) shard = SafetensorsFile::open((fs::path(dir) / file).string());
      GRANITE_CHECK(shard->contains(it.key()), shard->path(), ": index ", index_path.string(), " lists tensor '",
                    it.key(), "' but the file does not contain it");
      where[it.key()] = shard;
    }
    for (const auto& [file, shard] : shards) {
      for (const auto& key : shard->keys()) {
        GRANITE_CHECK(where.count(key) && where[key] == shard, shard->path(), ": tensor '", key,
                      "' is not listed for this file in ", index_path.string());
      }
    }
    return where;
  }
  if (fs::exists(single_path)) {
    auto file = SafetensorsFile::open(single_path.string());
    for (const auto& key : file->keys()) where[key] = file;
    return where;
  }
  const bool pickle = fs::exists(fs::path(dir) / "pytorch_model.bin") ||
                      fs::exists(fs::path(dir) / "pytorch_model.bin.index.json");
  GRANITE_FAIL(dir, ": no model weights (expected ", kSingleFile, " or ", kIndexFile, ")",
               pickle ? "; pickle checkpoints (pytorch_model.bin) are not read for safety: convert them to "
                        "safetensors with transformers' save_pretrained(safe_serialization=True)"
                      : "");
}

void load_weights(CausalLMImpl& model, const std::string& dir) {
  auto where = open_weights(dir);
  const ModelConfig& cfg = model.config();
  auto params = model.named_parameters();
  // Missing: every parameter must be in the checkpoint.
  std::vector<std::string> missing;
  for (const auto& item : params) {
    if (!where.count(item.key())) missing.push_back(item.key());
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", '" : "'") + missing[i] + "'";
    GRANITE_FAIL(dir, ": checkpoint is missing ", missing.size(), " tensor(s) the config needs: ", list,
                 missing.size() > 5 ? ", ..." : "");
  }
  // Unexpected: nothing in the checkpoint may go unused.
  for (const auto& [key, file] : where) {
    GRANITE_CHECK(params.contains(key) || ignorable_extra_key(key, cfg), file->path(), ": unexpected tensor '", key,
                  "' (not a parameter of this ", to_string(cfg.architecture), " config with ", cfg.num_hidden_layers,
                  " layers)");
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) {
    const auto& file = where.at(item.key());
    const auto& entry = file->entry(item.key());
    std::vector<int64_t> want(item.value().sizes().begin(), item.value().sizes().end());
    GRANITE_CHECK(entry.shape == want, file->path(), ": tensor '", item.key(), "' has shape ",
                  list_string(entry.shape), " but config.json needs ", list_string(want));
    item.value().copy_(file->tensor(item.key()));  // converts dtype and moves to the parameter's device
  }
}

CausalLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  GRANITE_CHECK(fs::is_directory(dir), dir, ": not a directory");
  const fs::path config_path = fs::path(dir) / "config.json";
  GRANITE_CHECK(fs::exists(config_path), dir, ": no config.json");
  ModelConfig cfg = load_hf_config(config_path.string());
  auto model = make_model(cfg, /*initialize=*/false);  // load_weights overwrites every parameter
  torch::ScalarType dtype = options.dtype.has_value() ? *options.dtype
                            : options.device.is_cpu() ? torch::kFloat32
                                                      : dtype_from_name(cfg.torch_dtype).value();  // validated
  model->to(options.device, dtype);
  load_weights(*model, dir);
  model->eval();
  return model;
}

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(const CausalLMImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model.named_parameters()) out.emplace_back(item.key(), item.value().detach());
  return out;
}

void save_pretrained(const CausalLMImpl& model, const std::string& dir, const SaveOptions& options) {
  fs::path target = fs::absolute(fs::path(dir)).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "out/" -> "out"
  const bool exists = fs::exists(target);
  if (exists) {
    GRANITE_CHECK(fs::is_directory(target), dir, ": exists and is not a directory");
    GRANITE_CHECK(fs::is_empty(target) || options.overwrite, dir,
                  ": directory exists and is not empty (refusing to overwrite; pass overwrite to replace it)");
  }
  for (const auto& f : options.copy_files) GRANITE_CHECK(fs::is_regular_file(f), f, ": file to copy does not exist");

  auto state = hf_state_dict(model);
  GRANITE_CHECK(!state.empty(), "save_pretrained: model has no parameters");
  const torch::ScalarType dtype = options.dtype.value_or(state.front().second.scalar_type());
  for (auto& [name, t] : state) t = t.to(torch::kCPU, dtype).contiguous();

  // Greedy sharding in parameter order (HF's shard_checkpoint does the same); one file when it all fits.
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < state.size(); ++i) {
    int64_t bytes = state[i].second.numel() * int64_t(state[i].second.element_size());
    if (!shards.back().empty() && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  // Everything goes into a sibling temporary directory first, then replaces `dir` with renames, so a crash or a full
  // disk never leaves a half-written model where a complete one (or the user's files) used to be.
  const fs::path tmp = target.parent_path() / (target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  remove_tree(tmp.string());
  fs::create_directories(tmp);
  try {
    ModelConfig cfg = model.config();
    cfg.torch_dtype = dtype_name(dtype);
    write_file_atomic((tmp / "config.json").string(), to_hf_json(cfg).dump(2) + "\n");
    const std::map<std::string, std::string> meta{{"format", "pt"}};
    Json weight_map = Json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
      std::string file = kSingleFile;
      if (shards.size() > 1) {
        std::ostringstream name;
        name << "model-" << std::setw(5) << std::setfill('0') << s + 1 << "-of-" << std::setw(5) << shards.size()
             << ".safetensors";
        file = name.str();
      }
      std::vector<std::pair<std::string, torch::Tensor>> part;
      for (size_t i : shards[s]) {
        part.push_back(state[i]);
        weight_map[state[i].first] = file;
      }
      save_safetensors((tmp / file).string(), part, meta);
    }
    if (shards.size() > 1) {
      Json index{{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
      write_file_atomic((tmp / kIndexFile).string(), index.dump(2) + "\n");
    }
    for (const auto& f : options.copy_files) {
      fs::copy_file(f, tmp / fs::path(f).filename(), fs::copy_options::overwrite_existing);
    }
    fsync_directory(tmp.string());
    if (exists) {
      const fs::path old = target.parent_path() / (target.filename().string() + ".old-" + std::to_string(::getpid()));
      fs::rename(target, old);
      fs::rename(tmp, target);
      remove_tree(old.string());
    } else {
      fs::rename(tmp, target);
    }
    fsync_directory(target.parent_path().string());
  } catch (const fs::filesystem_error& e) {
    remove_tree(tmp.string());
    GRANITE_FAIL(dir, ": saving failed: ", e.what());
  } catch (...) {
    remove_tree(tmp.string());
    throw;
  }
}

}  // namespace granite
