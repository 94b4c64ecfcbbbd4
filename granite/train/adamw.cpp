#include "granite/train/adamw.h"

#include <ATen/ATen.h>

#include <cmath>

#include "granite/core/check.h"
#include "granite/core/compat.h"
#include "granite/dist/communicator.h"

namespace granite {

AdamW::AdamW(ParameterBuffers& params, const OptimizerConfig& config, Communicator* shard_over)
    : params_(params), config_(config), comm_(shard_over) {
  const int64_t world = comm_ ? comm_->world_size() : 1, rank = comm_ ? comm_->rank() : 0;
  for (const auto& g : params_.groups()) {
    const int64_t n = g.grad.numel();  // the whole (padded) flat length; the master may be a shard
    GRANITE_CHECK(n % world == 0, "the sharded optimizer needs parameter buffers padded to a multiple of the world ",
                  "size ", world, " (ParameterBuffers shards); got ", n, " elements");
    begin_.push_back(rank * (n / world));
    length_.push_back(n / world);
    GRANITE_CHECK(g.master_begin == (g.master.numel() == n ? 0 : begin_.back()) &&
                      (g.master.numel() == n || g.master.numel() == n / world),
                  "the parameter buffers' master shard does not match this rank's shard ", rank, " of ", world);
    GRANITE_CHECK(!comm_ || !params_.mixed() || g.master.numel() == n / world || world == 1,
                  "the sharded optimizer with mixed precision needs the master sharded (ParameterBuffers shards)");
    exp_avg_.push_back(torch::zeros({n / world}, g.master.options()));
    exp_avg_sq_.push_back(torch::zeros({n / world}, g.master.options()));
  }
  const torch::Tensor& any = params_.groups().front().master;
  fused_ = GRANITE_HAS_FUSED_ADAMW && config_.fused && any.is_cuda();
  if (fused_) step_tensor_ = torch::zeros({}, any.options().dtype(torch::kFloat));
}

void AdamW::step(double lr) {
  ++steps_;
  const double b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  torch::NoGradGuard no_grad;
  auto& groups = params_.groups();
  if (fused_) step_tensor_.fill_(double(steps_));
  for (size_t i = 0; i < groups.size(); ++i) {
    ParameterGroup& g = groups[i];
    if (g.master.numel() == 0) continue;
    const double wd = g.decay ? config_.weight_decay : 0.0;
    const auto p = flat_chunks(g.master.narrow(0, begin_[i] - g.master_begin, length_[i])),
               grad = flat_chunks(g.grad.narrow(0, begin_[i], length_[i])), m = flat_chunks(exp_avg_[i]),
               v = flat_chunks(exp_avg_sq_[i]);
#if GRANITE_HAS_FUSED_ADAMW
    if (fused_) {
      const std::vector<torch::Tensor> steps(p.size(), step_tensor_);  // read, not written, by the kernel
      at::_fused_adamw_(p, grad, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, b1, b2, wd, eps, /*amsgrad=*/false,
                        /*maximize=*/false, /*grad_scale=*/{}, /*found_inf=*/{});
      continue;
    }
#endif
    const double bias1 = 1.0 - std::pow(b1, double(steps_)), bias2 = 1.0 - std::pow(b2, double(steps_));
    const double step_size = lr / bias1, bias2_sqrt = std::sqrt(bias2);
    for (size_t c = 0; c < p.size(); ++c) {
      if (wd != 0.0) p[c].mul_(1.0 - lr * wd);
      m[c].lerp_(grad[c], 1.0 - b1);
      v[c].mul_(b2).addcmul_(grad[c], grad[c], 1.0 - b2);
      const torch::Tensor denom = (v[c].sqrt() / bias2_sqrt).add_(eps);
      p[c].addcdiv_(m[c], denom, -step_size);
    }
  }
  params_.sync_model();  // this rank's part of the compute weights (all of them without sharding)
  if (comm_)            // the other ranks' parts
    for (auto& g : groups) comm_->all_gather_shards(g.compute, "optimizer all-gather");
}

void AdamW::gather_state() {
  release_state();
  if (!comm_) return;
  const auto& groups = params_.groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& g = groups[i];
    auto gather = [&](const torch::Tensor& part, std::vector<torch::Tensor>& into) {
      torch::Tensor whole = torch::zeros({g.grad.numel()}, part.options());
      whole.narrow(0, begin_[i], length_[i]).copy_(part);
      comm_->all_gather_shards(whole, "optimizer state gather");
      into.push_back(whole);
    };
    gather(exp_avg_[i], whole_exp_avg_);
    gather(exp_avg_sq_[i], whole_exp_avg_sq_);
    if (params_.mixed()) gather(g.master.narrow(0, begin_[i] - g.master_begin, length_[i]), whole_master_);
  }
}

void AdamW::release_state() {
  whole_exp_avg_.clear();
  whole_exp_avg_sq_.clear();
  whole_master_.clear();
}

void AdamW::set_steps(int64_t steps) {
  GRANITE_CHECK(steps >= 0, "negative optimizer step count ", steps);
  steps_ = steps;
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state_tensors() const {
  GRANITE_CHECK(!params_.is_fully_sharded(), "fully sharded optimizer state is saved by pieces (sharded checkpoints)");
  GRANITE_CHECK(!comm_ || !whole_exp_avg_.empty(), "the sharded optimizer's state needs gather_state() first");
  const auto& m = comm_ ? whole_exp_avg_ : exp_avg_;
  const auto& v = comm_ ? whole_exp_avg_sq_ : exp_avg_sq_;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const auto& groups = params_.groups();
  for (size_t i = 0; i < groups.size(); ++i)
    for (const ParameterSlot& s : groups[i].slots) {
      out.emplace_back("exp_avg." + s.name, groups[i].view(m[i], s));
      out.emplace_back("exp_avg_sq." + s.name, groups[i].view(v[i], s));
      if (params_.mixed())
        out.emplace_back("master." + s.name, groups[i].view(comm_ ? whole_master_[i] : groups[i].master, s));
    }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& tensors, int64_t steps, const std::string& where) {
  GRANITE_CHECK(steps >= 0, where, ": negative optimizer step count ", steps);
  torch::NoGradGuard no_grad;
  // Sharded: read into whole buffers (no collective needed: every rank reads the file), then keep this rank's part.
  if (comm_) {
    release_state();
    for (const auto& g : params_.groups()) {
      const auto whole = [&] { return torch::zeros({g.grad.numel()}, g.master.options()); };
      whole_exp_avg_.push_back(whole());
      whole_exp_avg_sq_.push_back(whole());
      if (params_.mixed()) whole_master_.push_back(whole());
    }
  }
  size_t used = 0;
  for (auto& [name, target] : state_tensors()) {
    const auto it = tensors.find(name);
    GRANITE_CHECK(it != tensors.end(), where, ": missing optimizer state tensor '", name, "'");
    GRANITE_CHECK(it->second.sizes() == target.sizes(), where, ": optimizer state '", name, "' has shape ",
                  it->second.sizes(), ", the model needs ", target.sizes());
    target.copy_(it->second);
    ++used;
  }
  GRANITE_CHECK(used == tensors.size(), where, ": holds ", tensors.size() - used,
                " optimizer state tensors this model does not have (a different model or precision policy)");
  steps_ = steps;
  if (comm_) {
    auto& groups = params_.groups();
    for (size_t i = 0; i < exp_avg_.size(); ++i) {
      exp_avg_[i].copy_(whole_exp_avg_[i].narrow(0, begin_[i], length_[i]));
      exp_avg_sq_[i].copy_(whole_exp_avg_sq_[i].narrow(0, begin_[i], length_[i]));
      if (params_.mixed())
        groups[i].master.narrow(0, begin_[i] - groups[i].master_begin, length_[i])
            .copy_(whole_master_[i].narrow(0, begin_[i], length_[i]));
    }
    release_state();
  }
  params_.sync_model();
}

}  // namespace granite
