#include "granite/train/parameter_buffers.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>
#include <unordered_set>

#include "granite/core/check.h"

namespace granite {

namespace {

// Runs after a parameter's AccumulateGrad node has stored the fresh gradient (the node is where DDP's reducer hooks
// in too, so activation checkpointing's inner backward passes here as well). Mixed precision: adds param.grad into
// the fp32 slot and drops it. Then tells the listener the slot is up to date.
class SlotReady : public torch::autograd::FunctionPostHook {
 public:
  SlotReady(torch::Tensor param, torch::Tensor slot, bool accumulate, size_t group, size_t index,
            std::shared_ptr<bool> alive, std::shared_ptr<ParameterBuffers::GradientReady> listener)
      : param_(std::move(param)),
        slot_(std::move(slot)),
        accumulate_(accumulate),
        group_(group),
        index_(index),
        alive_(std::move(alive)),
        listener_(std::move(listener)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (!*alive_) return outputs;
    if (accumulate_) {
      torch::Tensor& grad = param_.mutable_grad();
      if (grad.defined()) {
        slot_.add_(grad);
        grad.reset();
      }
    }
    if (*listener_) (*listener_)(group_, index_);
    return outputs;
  }

 private:
  torch::Tensor param_, slot_;
  bool accumulate_;
  size_t group_, index_;
  std::shared_ptr<bool> alive_;
  std::shared_ptr<ParameterBuffers::GradientReady> listener_;
};

}  // namespace

std::vector<torch::Tensor> flat_chunks(const torch::Tensor& flat, int64_t max_numel) {
  std::vector<torch::Tensor> out;
  for (int64_t at = 0; at < flat.numel(); at += max_numel)
    out.push_back(flat.narrow(0, at, std::min(max_numel, flat.numel() - at)));
  return out;
}

ParameterBuffers::ParameterBuffers(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
                                   c10::ScalarType master_dtype, int64_t shards, int64_t shard)
    : mixed_(compute_dtype != master_dtype), alive_(std::make_shared<bool>(true)) {
  GRANITE_CHECK(shards >= 1 && shard >= 0 && shard < shards, "shard ", shard, " of ", shards, " is not a shard");
  GRANITE_CHECK(master_dtype == c10::kFloat || master_dtype == compute_dtype,
                "master weights must be float32 or the compute dtype, got master ", master_dtype, " for compute ",
                compute_dtype);
  groups_.resize(2);
  groups_[0].decay = true;
  std::vector<torch::Tensor> members[2];
  std::unordered_set<const void*> seen;  // a tied weight is one parameter
  for (const auto& item : model.named_parameters()) {
    const torch::Tensor& p = item.value();
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    const int g = decays(item.key(), p, config) ? 0 : 1;
    ParameterGroup& group = groups_[g];
    const int64_t offset = group.slots.empty() ? 0 : group.slots.back().offset + group.slots.back().numel;
    group.slots.push_back({item.key(), offset, p.numel(), p.sizes().vec()});
    members[g].push_back(p);
  }
  GRANITE_CHECK(!members[0].empty() || !members[1].empty(), "the model has no trainable parameters");
  const torch::Device device = (members[0].empty() ? members[1] : members[0]).front().device();
  torch::NoGradGuard no_grad;
  for (int g = 0; g < 2; ++g) {
    ParameterGroup& group = groups_[g];
    const int64_t used = group.slots.empty() ? 0 : group.slots.back().offset + group.slots.back().numel;
    const int64_t n = (used + shards - 1) / shards * shards;
    const auto on_device = torch::TensorOptions().device(device);
    torch::Tensor whole = torch::zeros({n}, on_device.dtype(master_dtype));  // the parameters, exact
    group.grad = torch::zeros({n}, on_device.dtype(mixed_ ? c10::kFloat : master_dtype));
    for (size_t i = 0; i < group.slots.size(); ++i) {
      const torch::Tensor& p = members[g][i];
      GRANITE_CHECK(p.device() == device, "parameter ", group.slots[i].name, " is on ", p.device(), ", not ", device);
      group.view(whole, group.slots[i]).copy_(p);
    }
    if (mixed_) {
      group.compute = whole.to(compute_dtype);
      group.master_begin = shard * (n / shards);
      group.master = shards > 1 ? whole.narrow(0, group.master_begin, n / shards).clone() : whole;
    } else {
      group.compute = group.master = whole;
    }
    for (size_t i = 0; i < group.slots.size(); ++i) {
      torch::Tensor p = members[g][i];
      p.set_data(group.view(group.compute, group.slots[i]));
      if (mixed_)
        p.mutable_grad().reset();
      else
        p.mutable_grad() = group.view(group.grad, group.slots[i]);  // autograd accumulates in place
      auto accumulator = torch::autograd::impl::grad_accumulator(p);
      accumulator->add_post_hook(std::make_unique<SlotReady>(p, group.view(group.grad, group.slots[i]), mixed_,
                                                             size_t(g), i, alive_, listener_));
      accumulators_.push_back(std::move(accumulator));
    }
  }
}

ParameterBuffers::ParameterBuffers(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
                                   c10::ScalarType master_dtype, Communicator& comm, const torch::Device& device)
    : mixed_(compute_dtype != master_dtype), alive_(std::make_shared<bool>(true)), comm_(&comm) {
  GRANITE_CHECK(master_dtype == c10::kFloat || master_dtype == compute_dtype,
                "master weights must be float32 or the compute dtype, got master ", master_dtype, " for compute ",
                compute_dtype);
  sharded_ = std::make_unique<FullySharded>(model, config, compute_dtype, master_dtype, comm, device, groups_);
  GRANITE_CHECK(!groups_[0].slots.empty() || !groups_[1].slots.empty(), "the model has no trainable parameters");
}

ParameterBuffers::~ParameterBuffers() { *alive_ = false; }

int64_t ParameterBuffers::numel() const {
  int64_t n = 0;
  for (const auto& g : groups_)
    for (const auto& slot : g.slots) n += slot.numel;
  return n;
}

void ParameterBuffers::zero_grad() {
  for (auto& g : groups_) g.grad.zero_();
}

double ParameterBuffers::grad_norm() const {
  // Sums of squares accumulated in float64 (chunks of 2^24 elements bound the converted temporaries): an fp32
  // reduction over ~10^9 elements is off by ~1e-6 relative, and differently for every layout of the buffers (one
  // process, replicated, sharded), which the clipping coefficient would carry into the update.
  std::vector<torch::Tensor> squares_parts;
  for (const auto& g : groups_)
    for (const auto& chunk : flat_chunks(g.grad, int64_t(1) << 24)) {
      const torch::Tensor wide = chunk.to(c10::kDouble);
      squares_parts.push_back(wide.dot(wide));
    }
  double squares = squares_parts.empty() ? 0.0 : torch::stack(squares_parts).sum().item<double>();
  if (sharded_) squares = comm_->sum({squares}, "gradient norm")[0];
  return std::sqrt(squares);
}

void ParameterBuffers::scale_grad(double factor) {
  for (auto& g : groups_) g.grad.mul_(factor);
}

void ParameterBuffers::sync_model() {
  if (sharded_) return sharded_->sync_model();
  if (!mixed_) return;
  torch::NoGradGuard no_grad;
  for (auto& g : groups_) g.compute.narrow(0, g.master_begin, g.master.numel()).copy_(g.master);
}

}  // namespace granite
