#include "granite/nn/activation_checkpoint.h"

#include <ATen/Context.h>
#include <torch/autograd.h>

#include <mutex>

namespace granite {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The block function travels through the autograd context as a capsule (IValue has no slot for a std::function).
struct BlockFunction : torch::CustomClassHolder {
  explicit BlockFunction(std::function<torch::Tensor(const torch::Tensor&)> f) : fn(std::move(f)) {}
  std::function<torch::Tensor(const torch::Tensor&)> fn;
};

torch::Tensor rng_state(const torch::Device& device) {
  at::Generator g = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  at::Generator g = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               c10::intrusive_ptr<BlockFunction> block) {
    ctx->saved_data["rng"] = rng_state(x.device());
    ctx->saved_data["block"] = c10::IValue::make_capsule(block);
    ctx->save_for_backward({x});
    torch::NoGradGuard no_grad;
    return block->fn(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    auto block = c10::static_intrusive_pointer_cast<BlockFunction>(ctx->saved_data["block"].toCapsule());
    // Recompute with the forward's RNG state, then give the caller's RNG its state back.
    const torch::Tensor now = rng_state(x.device());
    set_rng_state(x.device(), ctx->saved_data["rng"].toTensor());
    torch::Tensor input = x.detach().requires_grad_(x.requires_grad());
    torch::Tensor output;
    {
      torch::AutoGradMode enable(true);
      output = block->fn(input);
    }
    set_rng_state(x.device(), now);
    torch::autograd::backward({output}, {grad_outputs[0]});  // parameters inside the block accumulate here
    return {x.requires_grad() ? input.grad() : torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpoint_block(const std::function<torch::Tensor(const torch::Tensor&)>& fn, const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) return fn(x);  // nothing to save memory on
  return CheckpointFunction::apply(x, c10::make_intrusive<BlockFunction>(fn));
}

}  // namespace granite
