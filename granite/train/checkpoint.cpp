#include "granite/train/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "granite/config/hf_config.h"
#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/list_directory.h"
#include "granite/core/remove_tree.h"
#include "granite/core/strings.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"

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

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CausalLMImpl& model,
                            const AdamW& optimizer, const Json& training_state,
                            const CheckpointFiles& files, int64_t keep_last) {
  const std::string root = output_dir + "/checkpoints";
  make_directories(root);
  const std::string final_dir = checkpoint_dir(output_dir, step);
  const std::string tmp = final_dir + ".tmp-" + std::to_string(::getpid());
  if (path_exists(tmp)) remove_tree(tmp);
  // The model directory (save_pretrained writes its files atomically into `tmp`).
  SaveOptions save;
  save.copy_files = files.copy;
  save_pretrained(model, tmp, save);
  save_safetensors(tmp + "/" + kOptimizerFile, optimizer.state_tensors(),
                   {{"format", "granite.adamw"}, {"step", std::to_string(optimizer.steps())}});
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

std::optional<std::string> latest_checkpoint(const std::string& output_dir) {
  const std::vector<int64_t> steps = complete_steps(output_dir + "/checkpoints");
  if (steps.empty()) return std::nullopt;
  return checkpoint_dir(output_dir, steps.back());
}

Json load_checkpoint(const std::string& dir, CausalLMImpl& model, AdamW& optimizer) {
  GRANITE_CHECK(path_exists(dir + "/" + kComplete), dir, " is not a complete checkpoint (no ", kComplete, " marker)");
  const ModelConfig saved = model_config_from_hf(read_json_file(dir + "/config.json"), dir + "/config.json");
  Json mine = to_json(model.config()), theirs = to_json(saved);
  mine.erase("torch_dtype");  // the weights' dtype follows the run's precision policy, checked with the state below
  theirs.erase("torch_dtype");
  GRANITE_CHECK(mine == theirs, dir, " holds a checkpoint of a different model config:\n  checkpoint: ", theirs.dump(),
                "\n  this run:   ", mine.dump());
  load_weights(model, dir);
  const std::string path = dir + "/" + kOptimizerFile;
  auto file = SafetensorsFile::open(path);
  const auto& meta = file->metadata();
  const auto format = meta.find("format"), step = meta.find("step");
  GRANITE_CHECK(format != meta.end() && format->second == "granite.adamw" && step != meta.end(), path,
                ": not a granite AdamW state (metadata needs format \"granite.adamw\" and a step)");
  size_t used = 0;
  const int64_t steps = leading_integer(step->second, used);
  GRANITE_CHECK(used > 0 && used == step->second.size(), path, ": metadata step \"", step->second,
                "\" is not an integer");
  std::map<std::string, torch::Tensor> tensors;  // zero-copy views of the mapped file
  for (const std::string& key : file->keys()) tensors.emplace(key, file->tensor(key));
  optimizer.load_state(tensors, steps, path);
  return read_json_file(dir + "/training_state.json");
}

bool load_master_weights(const std::string& dir, ParameterBuffers& params) {
  const std::string path = dir + "/" + kOptimizerFile;
  if (!path_exists(path)) return false;
  auto file = SafetensorsFile::open(path);
  for (const ParameterGroup& g : params.groups())
    for (const ParameterSlot& s : g.slots)
      if (!file->contains("master." + s.name)) return false;
  torch::NoGradGuard no_grad;
  for (ParameterGroup& g : params.groups()) {
    // The whole fp32 vector, then this rank's part of it (the master may be a shard).
    const torch::Tensor whole = torch::zeros({g.grad.numel()}, g.master.options());
    for (const ParameterSlot& s : g.slots) {
      const torch::Tensor t = file->tensor("master." + s.name);
      GRANITE_CHECK(t.sizes() == torch::IntArrayRef(s.shape), path, ": master.", s.name, " has shape ", t.sizes(),
                    ", the model needs ", torch::IntArrayRef(s.shape));
      g.view(whole, s).copy_(t);
    }
    g.master.copy_(whole.narrow(0, g.master_begin, g.master.numel()));
    if (g.compute.data_ptr() != g.master.data_ptr()) g.compute.copy_(whole);  // every rank's part, rounded
  }
  return true;
}

}  // namespace granite
