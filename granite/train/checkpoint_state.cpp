#include "granite/train/checkpoint_state.h"

#include <algorithm>
#include <cstdio>

#include "granite/core/check.h"
#include "granite/core/dtype.h"
#include "granite/core/file_status.h"
#include "granite/core/json.h"
#include "granite/core/list_directory.h"
#include "granite/core/strings.h"
#include "granite/io/pretrained.h"
#include "granite/train/adamw.h"
#include "granite/train/parameter_buffers.h"

namespace granite {

namespace {

constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kShardedFormat = "granite.sharded";

int64_t parse_count(const std::string& text, const std::string& where) {
  size_t used = 0;
  const int64_t value = leading_integer(text, used);
  GRANITE_CHECK(used > 0 && used == text.size(), where, ": \"", text, "\" is not an integer");
  return value;
}

// "state-00001-of-00004.safetensors" -> {1, 4}; anything else -> {-1, -1}.
std::pair<int, int> rank_of_file(const std::string& name) {
  int rank = -1, world = -1, consumed = 0;
  if (std::sscanf(name.c_str(), "state-%5d-of-%5d.safetensors%n", &rank, &world, &consumed) == 2 &&
      size_t(consumed) == name.size() && name.size() == 32)
    return {rank, world};
  return {-1, -1};
}

}  // namespace

std::pair<std::shared_ptr<SafetensorsFile>, int64_t> open_optimizer_state(const std::string& dir) {
  const std::string path = dir + "/" + kOptimizerFile;
  auto file = SafetensorsFile::open(path);
  const auto& meta = file->metadata();
  const auto format = meta.find("format"), step = meta.find("step");
  GRANITE_CHECK(format != meta.end() && format->second == "granite.adamw" && step != meta.end(), path,
                ": not a granite AdamW state (metadata needs format \"granite.adamw\" and a step)");
  return {file, parse_count(step->second, path + ": metadata step")};
}

std::string sharded_state_file(int rank, int world) {
  char name[64];
  std::snprintf(name, sizeof name, "state-%05d-of-%05d.safetensors", rank, world);
  return name;
}

CheckpointState::CheckpointState(const std::string& dir) : dir_(dir) {
  std::vector<std::pair<int, std::string>> rank_files;
  int world = -1;
  for (const std::string& name : list_directory(dir)) {
    const auto [rank, of] = rank_of_file(name);
    if (rank < 0) continue;
    GRANITE_CHECK(world < 0 || of == world, dir, ": sharded state files of different world sizes (", world, " and ",
                  of, ")");
    world = of;
    rank_files.emplace_back(rank, name);
  }
  sharded_ = !rank_files.empty();
  if (sharded_) {
    std::sort(rank_files.begin(), rank_files.end());
    for (int r = 0; r < world; ++r)
      GRANITE_CHECK(size_t(r) < rank_files.size() && rank_files[size_t(r)].first == r, dir, ": ",
                    sharded_state_file(r, world), " is missing (a sharded checkpoint of ", world, " ranks)");
    for (const auto& [rank, name] : rank_files) {
      const std::string path = dir + "/" + name;
      auto file = SafetensorsFile::open(path);
      const auto& meta = file->metadata();
      auto field = [&](const char* key) -> const std::string& {
        const auto it = meta.find(key);
        GRANITE_CHECK(it != meta.end(), path, ": metadata has no '", key, "' (not a granite sharded state file)");
        return it->second;
      };
      GRANITE_CHECK(field("format") == kShardedFormat, path, ": metadata format \"", field("format"),
                    "\" is not \"", kShardedFormat, "\"");
      const int64_t steps = parse_count(field("step"), path + ": metadata step");
      GRANITE_CHECK(rank == 0 || steps == steps_, path, ": step ", steps, " differs from rank 0's ", steps_);
      steps_ = steps;
      mixed_ = field("mixed") == "true";
      if (rank == 0) {
        const Json shapes = Json::parse(field("shapes"), nullptr, false);
        GRANITE_CHECK(shapes.is_object(), path, ": metadata 'shapes' is not a JSON object");
        for (auto it = shapes.begin(); it != shapes.end(); ++it)
          shapes_[it.key()] = it.value().get<std::vector<int64_t>>();
      }
      for (const std::string& tensor : file->keys()) {
        const size_t at = tensor.rfind('@');
        GRANITE_CHECK(at != std::string::npos, path, ": tensor '", tensor, "' is not named <key>@<begin>");
        const int64_t begin = parse_count(tensor.substr(at + 1), path + ": tensor '" + tensor + "'");
        ranges_[tensor.substr(0, at)].push_back({begin, file->tensor(tensor).numel(), file, tensor});
      }
    }
    for (auto& [key, ranges] : ranges_)
      std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    return;
  }
  // The whole layout: model weights, and the optimizer file.
  for (const auto& [key, file] : open_weights(dir)) {
    const torch::Tensor t = file->tensor(key);
    shapes_[key] = t.sizes().vec();
    ranges_["master." + key].push_back({0, t.numel(), file, key});
  }
  const auto [file, steps] = open_optimizer_state(dir);
  steps_ = steps;
  for (const std::string& key : file->keys()) {
    if (starts_with(key, "master.")) mixed_ = true;
    ranges_[key] = {{0, file->tensor(key).numel(), file, key}};  // fp32 master replaces the model weights' entry
  }
}

void CheckpointState::read(const std::string& key, int64_t begin, const torch::Tensor& out) const {
  const auto it = ranges_.find(key);
  GRANITE_CHECK(it != ranges_.end(), dir_, ": the checkpoint has no '", key, "'");
  const int64_t end = begin + out.numel();
  int64_t covered = 0;
  for (const Range& r : it->second) {
    const int64_t b = std::max(begin, r.begin), e = std::min(end, r.begin + r.length);
    if (b >= e) continue;
    out.narrow(0, b - begin, e - b).copy_(r.file->tensor(r.tensor).reshape({-1}).narrow(0, b - r.begin, e - b));
    covered += e - b;
  }
  GRANITE_CHECK(covered == out.numel(), dir_, ": elements [", begin, ", ", end, ") of '", key, "' are not all in ",
                "the checkpoint's files (", covered, " found)");
}

torch::Tensor CheckpointState::read_whole(const std::string& key, c10::ScalarType dtype) const {
  const std::string name = key.substr(key.find('.') + 1);
  const auto shape = shapes_.find(name);
  GRANITE_CHECK(shape != shapes_.end(), dir_, ": the checkpoint has no parameter '", name, "'");
  torch::Tensor out = torch::empty(shape->second, torch::TensorOptions().dtype(dtype));
  read(key, 0, out.view({-1}));
  return out;
}

void save_sharded_state(const std::string& path, const ParameterBuffers& params, AdamW& optimizer, int rank, int world,
                        c10::ScalarType compute_dtype) {
  GRANITE_CHECK(params.is_fully_sharded(), "sharded state files are written from fully sharded parameters");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  Json shapes = Json::object();
  const auto& groups = params.groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    for (const ParameterSlot& s : groups[g].slots) shapes[s.name] = s.shape;
    for (const ParameterPiece& p : groups[g].pieces) {
      const std::string suffix = groups[g].slots[p.slot].name + "@" + std::to_string(p.begin);
      tensors.emplace_back("master." + suffix, groups[g].master.narrow(0, p.local, p.length));
      tensors.emplace_back("exp_avg." + suffix, optimizer.exp_avg(g).narrow(0, p.local, p.length));
      tensors.emplace_back("exp_avg_sq." + suffix, optimizer.exp_avg_sq(g).narrow(0, p.local, p.length));
    }
  }
  save_safetensors(path, tensors,
                   {{"format", kShardedFormat},
                    {"step", std::to_string(optimizer.steps())},
                    {"rank", std::to_string(rank)},
                    {"world_size", std::to_string(world)},
                    {"mixed", params.mixed() ? "true" : "false"},
                    {"compute_dtype", dtype_name(compute_dtype)},
                    {"shapes", shapes.dump()}});
}

void restore_state(const CheckpointState& state, ParameterBuffers& params, AdamW& optimizer) {
  GRANITE_CHECK(state.mixed() == params.mixed(), "the checkpoint was written by a run ",
                state.mixed() ? "with" : "without", " separate fp32 master weights (a different precision policy: ",
                "train.dtype / train.master_dtype) than this one");
  torch::NoGradGuard no_grad;
  auto& groups = params.groups();
  for (const ParameterGroup& g : groups)
    for (const ParameterSlot& s : g.slots) {
      const auto shape = state.shapes().find(s.name);
      GRANITE_CHECK(shape != state.shapes().end(), "the checkpoint has no parameter '", s.name, "'");
      GRANITE_CHECK(shape->second == s.shape, "the checkpoint's '", s.name, "' has shape ",
                    torch::IntArrayRef(shape->second), ", the model needs ", torch::IntArrayRef(s.shape));
    }
  if (params.is_fully_sharded()) {
    for (size_t g = 0; g < groups.size(); ++g)
      for (const ParameterPiece& p : groups[g].pieces) {
        const std::string& name = groups[g].slots[p.slot].name;
        state.read("master." + name, p.begin, groups[g].master.narrow(0, p.local, p.length));
        state.read("exp_avg." + name, p.begin, optimizer.exp_avg(g).narrow(0, p.local, p.length));
        state.read("exp_avg_sq." + name, p.begin, optimizer.exp_avg_sq(g).narrow(0, p.local, p.length));
      }
    optimizer.set_steps(state.optimizer_steps());
    params.sync_model();
    return;
  }
  // Replicated parameters: the compute weights whole (the master's rounding), then the optimizer's state by name.
  std::map<std::string, torch::Tensor> tensors;
  for (ParameterGroup& g : groups)
    for (const ParameterSlot& s : g.slots) {
      state.read("master." + s.name, 0, g.compute.narrow(0, s.offset, s.numel));
      for (const char* kind : {"exp_avg.", "exp_avg_sq."})
        tensors[kind + s.name] = state.read_whole(kind + s.name, g.master.scalar_type());
      if (params.mixed()) tensors["master." + s.name] = state.read_whole("master." + s.name, c10::kFloat);
    }
  optimizer.load_state(tensors, state.optimizer_steps(), "checkpoint state");
}

}  // namespace granite
