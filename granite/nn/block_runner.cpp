#include "granite/nn/block_runner.h"

#include "granite/nn/activation_checkpoint.h"

namespace granite {

torch::Tensor BlockRunner::run(size_t block, const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                               const torch::Tensor& x) const {
  if (!hooks) return checkpoint ? checkpoint_block(fn, x) : fn(x);
  // The hooks run inside the checkpointed function, so its recomputation in backward is wrapped by them too.
  BlockHooks* h = hooks;
  const bool checkpointed = checkpoint;
  auto wrapped = [h, checkpointed, block, fn](const torch::Tensor& input) {
    h->before_block(block);
    return h->after_block(block, fn(input), checkpointed);
  };
  return checkpoint ? checkpoint_block(wrapped, x) : wrapped(x);
}

}  // namespace granite
