#include "granite/train/fully_sharded.h"

#include <c10/core/StorageImpl.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <unordered_set>

#include "granite/core/check.h"
#include "granite/core/strings.h"
#include "granite/train/parameter_buffers.h"

namespace granite {

namespace {

// A buffer's memory goes away (every view of it keeps its shape) and comes back in the same StorageImpl.
void release_storage(const torch::Tensor& t) {
  c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
  impl->set_data_ptr_noswap(c10::DataPtr(nullptr, t.device()));
  impl->set_nbytes(0);
}

void allocate_storage(const torch::Tensor& t) {
  c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
  const size_t nbytes = size_t(t.numel()) * t.element_size();
  if (impl->nbytes() == nbytes) return;
  impl->set_data_ptr_noswap(impl->allocator()->allocate(nbytes));
  impl->set_nbytes(nbytes);
}

}  // namespace

// One optimizer group's parameters of a unit.
struct FullySharded::Part {
  size_t group = 0;
  std::vector<size_t> slots;           // indices into the group's slots
  std::vector<torch::Tensor> params;   // the model's parameters, views of `full`
  int64_t padded = 0, shard = 0;       // flat length (a multiple of the world size) and shard length
  int64_t local = 0;                   // where this rank's shard sits in the group's local buffers
  torch::Tensor full;                  // (padded,) compute dtype; no memory while resharded
  torch::Tensor grad;                  // (padded,) gradient dtype while gradients arrive
};

struct FullySharded::Unit {
  std::vector<Part> parts;
  bool keep_gathered = false;  // the root
  bool gathered = false;
  size_t members = 0, arrived = 0;  // parameters, and those whose gradient arrived in this backward
};

namespace {

// Runs after a parameter's AccumulateGrad node stored its gradient (activation checkpointing's inner backward
// passes here too): hands it to the unit.
class GradientArrived : public torch::autograd::FunctionPostHook {
 public:
  GradientArrived(std::function<void()> arrived, std::shared_ptr<bool> alive)
      : arrived_(std::move(arrived)), alive_(std::move(alive)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (*alive_) arrived_();
    return outputs;
  }

 private:
  std::function<void()> arrived_;
  std::shared_ptr<bool> alive_;
};

}  // namespace

FullySharded::FullySharded(CausalLMImpl& model, const OptimizerConfig& config, c10::ScalarType compute_dtype,
                           c10::ScalarType master_dtype, Communicator& comm, const torch::Device& device,
                           std::vector<ParameterGroup>& groups)
    : comm_(comm), groups_(groups), mixed_(compute_dtype != master_dtype), alive_(std::make_shared<bool>(true)) {
  const int64_t world = comm.world_size(), rank = comm.rank();
  const size_t blocks = size_t(model.config().num_hidden_layers);
  for (size_t u = 0; u <= blocks; ++u) {
    units_.push_back(std::make_unique<Unit>());
    units_.back()->parts.resize(2);
    for (size_t g = 0; g < 2; ++g) units_.back()->parts[g].group = g;
  }
  units_[0]->keep_gathered = true;
  groups_.assign(2, ParameterGroup{});
  groups_[0].decay = true;
  // Which unit each parameter belongs to: block i's prefix, else the root.
  auto unit_of = [&](const std::string& name) -> size_t {
    for (size_t i = 0; i < blocks; ++i)
      if (starts_with(name, model.block_parameter_prefix(i))) return 1 + i;
    return 0;
  };
  std::unordered_set<const void*> seen;  // a tied weight is one parameter
  for (const auto& item : model.named_parameters()) {
    const torch::Tensor& p = item.value();
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    const size_t g = decays(item.key(), p, config) ? 0 : 1;
    Part& part = units_[unit_of(item.key())]->parts[g];
    int64_t offset = 0;
    for (size_t s : part.slots) offset += groups_[g].slots[s].numel;
    part.slots.push_back(groups_[g].slots.size());
    part.params.push_back(p);
    groups_[g].slots.push_back({item.key(), offset, p.numel(), p.sizes().vec()});
  }
  // Shard sizes and each shard's place in the local buffers; then the pieces.
  int64_t local_size[2] = {0, 0};
  for (auto& unit : units_)
    for (Part& part : unit->parts) {
      int64_t numel = 0;
      for (size_t s : part.slots) numel += groups_[part.group].slots[s].numel;
      part.padded = (numel + world - 1) / world * world;
      part.shard = part.padded / world;
      part.local = local_size[part.group];
      local_size[part.group] += part.shard;
      unit->members += part.slots.size();
      const int64_t lo = rank * part.shard, hi = lo + part.shard;
      for (size_t s : part.slots) {
        const ParameterSlot& slot = groups_[part.group].slots[s];
        const int64_t b = std::max(lo, slot.offset), e = std::min(hi, slot.offset + slot.numel);
        if (b < e) groups_[part.group].pieces.push_back({s, b - slot.offset, e - b, part.local + (b - lo)});
      }
    }
  const auto on_device = torch::TensorOptions().device(device);
  for (size_t g = 0; g < 2; ++g) {
    groups_[g].master = torch::zeros({local_size[g]}, on_device.dtype(master_dtype));
    groups_[g].grad = torch::zeros({local_size[g]}, on_device.dtype(mixed_ ? c10::kFloat : master_dtype));
    groups_[g].compute = mixed_ ? torch::zeros({local_size[g]}, on_device.dtype(compute_dtype)) : groups_[g].master;
  }
  // Unit by unit: the whole flat vector on the device (rank 0's values), this rank's shard of it, and the
  // parameters as views of the full compute buffer.
  torch::NoGradGuard no_grad;
  for (size_t u = 0; u < units_.size(); ++u) {
    Unit& unit = *units_[u];
    for (size_t k = 0; k < unit.parts.size(); ++k) {
      Part& part = unit.parts[k];
      ParameterGroup& group = groups_[part.group];
      torch::Tensor whole = torch::zeros({part.padded}, on_device.dtype(master_dtype));
      for (size_t i = 0; i < part.slots.size(); ++i) {
        const ParameterSlot& slot = group.slots[part.slots[i]];
        whole.narrow(0, slot.offset, slot.numel).copy_(part.params[i].reshape({-1}));
      }
      if (part.padded > 0) comm_.broadcast(whole, 0, "initial weights");
      group.master.narrow(0, part.local, part.shard).copy_(whole.narrow(0, rank * part.shard, part.shard));
      if (mixed_) group.compute.narrow(0, part.local, part.shard).copy_(group.master.narrow(0, part.local, part.shard));
      part.full = whole.to(compute_dtype).clone();
      for (size_t i = 0; i < part.slots.size(); ++i) {
        torch::Tensor p = part.params[i];
        const ParameterSlot& slot = group.slots[part.slots[i]];
        p.set_data(part.full.narrow(0, slot.offset, slot.numel).view(slot.shape));
        p.mutable_grad().reset();
        auto accumulator = torch::autograd::impl::grad_accumulator(p);
        accumulator->add_post_hook(std::make_unique<GradientArrived>(
            [this, u, k, i] { gradient_arrived(u, k, i); }, alive_));
        accumulators_.push_back(std::move(accumulator));  // the parameter holds it only weakly
      }
    }
    unit.gathered = true;
    release(unit);  // blocks wait for their forward; the root stays
  }
  model.set_block_hooks(this);
}

FullySharded::~FullySharded() { *alive_ = false; }

void FullySharded::gather(Unit& unit) {
  if (unit.gathered) return;
  torch::NoGradGuard no_grad;
  const int64_t rank = comm_.rank();
  for (Part& part : unit.parts) {
    if (part.padded == 0) continue;
    allocate_storage(part.full);
    part.full.narrow(0, rank * part.shard, part.shard)
        .copy_(groups_[part.group].compute.narrow(0, part.local, part.shard));
    comm_.all_gather_shards(part.full, "fully sharded all-gather");
  }
  unit.gathered = true;
}

void FullySharded::release(Unit& unit) {
  if (!unit.gathered || unit.keep_gathered) return;
  for (Part& part : unit.parts)
    if (part.padded > 0) release_storage(part.full);
  unit.gathered = false;
}

void FullySharded::before_block(size_t block) { gather(*units_.at(1 + block)); }

torch::Tensor FullySharded::after_block(size_t block, torch::Tensor output, bool checkpointed) {
  Unit& unit = *units_.at(1 + block);
  if (!torch::GradMode::is_enabled()) {  // evaluation, or checkpointing's first forward
    release(unit);
    return output;
  }
  if (checkpointed) return output;  // the recomputation: its backward follows at once and frees the unit
  release(unit);
  if (output.requires_grad())
    output.register_hook([this, &unit, alive = alive_](const torch::Tensor&) {
      if (*alive) gather(unit);
    });
  return output;
}

void FullySharded::gradient_arrived(size_t u, size_t k, size_t i) {
  Unit& unit = *units_[u];
  Part& part = unit.parts[k];
  torch::Tensor& grad = part.params[i].mutable_grad();
  if (grad.defined()) {
    torch::NoGradGuard no_grad;
    ParameterGroup& group = groups_[part.group];
    if (!part.grad.defined()) part.grad = torch::zeros({part.padded}, group.grad.options());
    const ParameterSlot& slot = group.slots[part.slots[i]];
    part.grad.narrow(0, slot.offset, slot.numel).add_(grad.reshape({-1}));
    grad.reset();
  }
  if (++unit.arrived == unit.members) reduce_scatter(unit);
}

void FullySharded::reduce_scatter(Unit& unit) {
  torch::NoGradGuard no_grad;
  for (Part& part : unit.parts) {
    if (!part.grad.defined()) continue;
    ParameterGroup& group = groups_[part.group];
    torch::Tensor shard = torch::empty({part.shard}, part.grad.options());
    comm_.reduce_scatter_sum(part.grad, shard, "fully sharded reduce-scatter");
    group.grad.narrow(0, part.local, part.shard).add_(shard);
    part.grad.reset();
  }
  unit.arrived = 0;
  release(unit);
}

void FullySharded::finish_backward() {
  // Every rank ran the same graph, so the same units are incomplete everywhere and the collectives line up.
  for (auto& unit : units_) {
    bool pending = false;
    for (const Part& part : unit->parts) pending = pending || part.grad.defined();
    if (pending) reduce_scatter(*unit);
    unit->arrived = 0;
    release(*unit);
  }
}

void FullySharded::sync_model() {
  torch::NoGradGuard no_grad;
  if (mixed_)
    for (ParameterGroup& g : groups_) g.compute.copy_(g.master);
  for (auto& unit : units_)
    if (unit->keep_gathered) {
      unit->gathered = false;
      gather(*unit);
    }
}

}  // namespace granite
