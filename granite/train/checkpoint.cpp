#include "granite/train/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "granite/config/hf_config.h"
#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/list_directory.h"
#include "granite/core/remove_tree.h"
#include "granite/core/strings.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "granite/models/factory.h"
#include "granite/core/dtype.h"
#include "granite/train/checkpoint_state.h"

namespace granite {

namespace {

constexpr const char* kComplete = "COMPLETE";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRANITE_CHECK(fd >= 0, "cannot open ", path, " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  GRANITE_CHECK(rc == 0, "cannot sync ", path, ": ", std::strerror(err));
}

// The steps of the complete checkpoints under `root`, ascending.
std::vector<int64_t> complete_steps(const std::string& root) {
  std::vector<int64_t> steps;
  if (!path_exists(root)) return steps;
  for (const std::string& name : list_directory(root)) {
    if (name.size() != 13 || !starts_with(name, "step-")) continue;
    if (!path_exists(root + "/" + name + "/" + kComplete)) continue;
    steps.push_back(std::stoll(name.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

}  // namespace

std::string checkpoint_dir(const std::string& output_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return output_dir + "/checkpoints/" + name;
}

namespace {

// The last act of every save: training_state.json and the COMPLETE marker into the temporary directory, then it
// becomes the checkpoint with one rename, and older checkpoints beyond keep_last go.
std::string publish_checkpoint(const std::string& output_dir, int64_t step, const std::string& tmp,
                               const Json& training_state, int64_t keep_last) {
  const std::string root = output_dir + "/checkpoints";
  const std::string final_dir = checkpoint_dir(output_dir, step);
  write_file_atomic(tmp + "/training_state.json", training_state.dump(2) + "\n");
  write_file_atomic(tmp + "/" + kComplete, std::to_string(step) + "\n");
  fsync_path(tmp);
  if (path_exists(final_dir)) remove_tree(final_dir);  // an incomplete one from a crash, or a re-save of the same step
  GRANITE_CHECK(::rename(tmp.c_str(), final_dir.c_str()) == 0, "cannot rename ", tmp, " to ", final_dir, ": ",
                std::strerror(errno));
  fsync_directory(root);
  // Only now may old checkpoints go.
  std::vector<int64_t> steps = complete_steps(root);
  for (size_t i = 0; i + size_t(keep_last) < steps.size(); ++i) remove_tree(checkpoint_dir(output_dir, steps[i]));
  return final_dir;
}

}  // namespace

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CausalLMImpl& model,
                            const AdamW& optimizer, const Json& training_state,
                            const CheckpointFiles& files, int64_t keep_last) {
  make_directories(output_dir + "/checkpoints");
  const std::string tmp = checkpoint_dir(output_dir, step) + ".tmp-" + std::to_string(::getpid());
  if (path_exists(tmp)) remove_tree(tmp);
  // The model directory (save_pretrained writes its files atomically into `tmp`).
  SaveOptions save;
  save.copy_files = files.copy;
  save_pretrained(model, tmp, save);
  save_safetensors(tmp + "/" + kOptimizerFile, optimizer.state_tensors(),
                   {{"format", "granite.adamw"}, {"step", std::to_string(optimizer.steps())}});
  return publish_checkpoint(output_dir, step, tmp, training_state, keep_last);
}

std::string save_sharded_checkpoint(const std::string& output_dir, int64_t step, const CausalLMImpl& model,
                                    const ParameterBuffers& params, AdamW& optimizer, c10::ScalarType compute_dtype,
                                    const Json& training_state, const CheckpointFiles& files, int64_t keep_last,
                                    Communicator& comm) {
  const bool main_rank = comm.rank() == 0;
  const std::string tmp = checkpoint_dir(output_dir, step) + ".tmp-sharded";  // one name every rank agrees on
  if (main_rank) {
    make_directories(output_dir + "/checkpoints");
    if (path_exists(tmp)) remove_tree(tmp);
    make_directories(tmp);
  }
  comm.barrier("checkpoint directory");
  save_sharded_state(tmp + "/" + sharded_state_file(comm.rank(), comm.world_size()), params, optimizer, comm.rank(),
                     comm.world_size(), compute_dtype);
  comm.barrier("sharded checkpoint files");
  std::string dir = checkpoint_dir(output_dir, step);
  if (main_rank) {
    ModelConfig cfg = model.config();
    cfg.torch_dtype = dtype_name(compute_dtype);
    write_file_atomic(tmp + "/config.json", to_hf_json(cfg).dump(2) + "\n");
    for (const std::string& f : files.copy) {
      const std::string target = tmp + "/" + std::filesystem::path(f).filename().string();
      std::filesystem::copy_file(f, target, std::filesystem::copy_options::overwrite_existing);
      fsync_path(target);
    }
    dir = publish_checkpoint(output_dir, step, tmp, training_state, keep_last);
  }
  comm.barrier("checkpoint publish");
  return dir;
}

Json resume_checkpoint(const std::string& dir, CausalLMImpl& model, ParameterBuffers& params, AdamW& optimizer) {
  if (!is_sharded_checkpoint(dir) && !params.is_fully_sharded()) return load_checkpoint(dir, model, optimizer);
  check_checkpoint_config(dir, model);
  restore_state(CheckpointState(dir), params, optimizer);
  return read_json_file(dir + "/training_state.json");
}

std::optional<std::string> latest_checkpoint(const std::string& output_dir) {
  const std::vector<int64_t> steps = complete_steps(output_dir + "/checkpoints");
  if (steps.empty()) return std::nullopt;
  return checkpoint_dir(output_dir, steps.back());
}

void check_checkpoint_config(const std::string& dir, const CausalLMImpl& model) {
  GRANITE_CHECK(path_exists(dir + "/" + kComplete), dir, " is not a complete checkpoint (no ", kComplete, " marker)");
  const ModelConfig saved = model_config_from_hf(read_json_file(dir + "/config.json"), dir + "/config.json");
  Json mine = to_json(model.config()), theirs = to_json(saved);
  mine.erase("torch_dtype");  // the weights' dtype follows the run's precision policy, checked with the state below
  theirs.erase("torch_dtype");
  GRANITE_CHECK(mine == theirs, dir, " holds a checkpoint of a different model config:\n  checkpoint: ", theirs.dump(),
                "\n  this run:   ", mine.dump());
}

Json load_checkpoint(const std::string& dir, CausalLMImpl& model, AdamW& optimizer) {
  check_checkpoint_config(dir, model);
  load_weights(model, dir);
  const auto [file, steps] = open_optimizer_state(dir);
  std::map<std::string, torch::Tensor> tensors;  // zero-copy views of the mapped file
  for (const std::string& key : file->keys()) tensors.emplace(key, file->tensor(key));
  optimizer.load_state(tensors, steps, dir + "/" + kOptimizerFile);
  return read_json_file(dir + "/training_state.json");
}

bool is_sharded_checkpoint(const std::string& dir) {
  if (!is_directory(dir)) return false;  // the model loader says what is wrong with it
  for (const std::string& name : list_directory(dir))
    if (starts_with(name, "state-00000-of-")) return true;  // rank 0's file (sharded_state_file)
  return false;
}

CausalLM load_model_or_checkpoint(const std::string& dir, const LoadOptions& options) {
  if (!is_sharded_checkpoint(dir)) return load_pretrained(dir, options);
  const ModelConfig cfg = model_config_from_hf(read_json_file(dir + "/config.json"), dir + "/config.json");
  CausalLM model = make_model(cfg, /*initialize=*/false);
  // As load_pretrained: float32 on the CPU unless asked, the run's compute dtype (config.json) elsewhere; converted
  // before any page of the (uninitialised) fp32 parameters is touched.
  model->to(options.dtype.value_or(options.device.is_cpu() ? c10::kFloat : *dtype_from_name(cfg.torch_dtype)));
  const CheckpointState state(dir);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string key = "master." + item.key();
    GRANITE_CHECK(state.contains(key), dir, ": the checkpoint has no '", key, "'");
    item.value().copy_(state.read_whole(key, c10::kFloat).view(item.value().sizes()));
  }
  model->to(options.device);
  model->eval();
  return model;
}

bool load_master_weights(const std::string& dir, ParameterBuffers& params) {
  if (!path_exists(dir + "/" + kOptimizerFile) && !is_sharded_checkpoint(dir)) return false;
  const CheckpointState state(dir);
  if (!state.mixed()) return false;  // no fp32 master apart from the (already loaded) model weights
  torch::NoGradGuard no_grad;
  for (ParameterGroup& g : params.groups()) {
    if (params.is_fully_sharded()) {
      for (const ParameterPiece& p : g.pieces)
        state.read("master." + g.slots[p.slot].name, p.begin, g.master.narrow(0, p.local, p.length));
      continue;
    }
    // The whole fp32 vector, then this rank's part of it (the master may be a shard).
    const torch::Tensor whole = torch::zeros({g.grad.numel()}, g.master.options());
    for (const ParameterSlot& s : g.slots) state.read("master." + s.name, 0, whole.narrow(0, s.offset, s.numel));
    g.master.copy_(whole.narrow(0, g.master_begin, g.master.numel()));
    if (g.compute.data_ptr() != g.master.data_ptr()) g.compute.copy_(whole);  // every rank's part, rounded
  }
  if (params.is_fully_sharded()) params.sync_model();
  return true;
}

}  // namespace granite
