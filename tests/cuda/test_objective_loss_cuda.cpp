// The fused CLM/FIM loss on the GPU (tag [cuda]): fp32 on CUDA against a CPU fp64 reference written with plain ops,
// and bf16 (the training precision) within bf16's own error of that reference, gradients included; and with a
// Granite-sized vocabulary so the chunking over rows is exercised.
#include <catch2/catch.hpp>

#include <torch/cuda.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/functional/loss.h>

#include "granite/train/objective_loss.h"
#include "support/tensor_match.h"

namespace {

struct Problem {
  torch::Tensor hidden, weight, bias, targets, objectives;
};

Problem make_problem(int64_t B, int64_t T, int64_t d, int64_t V) {
  torch::manual_seed(11);
  Problem p;
  p.hidden = torch::randn({B, T, d}, torch::kDouble);
  p.weight = torch::randn({V, d}, torch::kDouble) * 0.05;
  p.bias = torch::randn({V}, torch::kDouble) * 0.1;
  p.targets = torch::randint(0, V, {B, T}, torch::kLong);
  p.objectives = torch::randint(0, 3, {B, T}, torch::kLong).to(torch::kUInt8);
  return p;
}

// loss, d hidden, d weight, d bias with plain ops in fp64 on the CPU.
std::vector<torch::Tensor> reference(const Problem& p, double alpha) {
  auto h = p.hidden.clone().requires_grad_(true), w = p.weight.clone().requires_grad_(true),
       b = p.bias.clone().requires_grad_(true);
  auto logits = torch::nn::functional::linear(h, w, b).view({-1, w.size(0)});
  auto ce = torch::nn::functional::cross_entropy(logits, p.targets.view(-1),
                                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  auto obj = p.objectives.view(-1);
  auto clm = obj == 1, fim = obj == 2;
  auto loss = alpha * ce.masked_select(clm).sum() / clm.sum() + (1 - alpha) * ce.masked_select(fim).sum() / fim.sum();
  loss.backward();
  return {loss.detach(), h.grad(), w.grad(), b.grad()};
}

std::vector<torch::Tensor> fused(const Problem& p, double alpha, torch::ScalarType dtype, int64_t chunk) {
  auto on = [&](const torch::Tensor& x) { return x.to(torch::kCUDA, dtype).detach().requires_grad_(true); };
  auto h = on(p.hidden), w = on(p.weight), b = on(p.bias);
  const auto global = granite::count_objectives(p.objectives);
  auto out = granite::objective_loss(h, w, b, p.targets.to(torch::kCUDA), p.objectives.to(torch::kCUDA), global,
                                     alpha, chunk);
  out.loss.backward();
  auto cpu = [](const torch::Tensor& x) { return x.to(torch::kCPU, torch::kDouble); };
  return {cpu(out.loss.detach()), cpu(h.grad()), cpu(w.grad()), cpu(b.grad())};
}

}  // namespace

TEST_CASE("fused objective loss on CUDA equals the plain-ops reference (fp32) and is within bf16 error (bf16)",
          "[cuda][train][loss]") {
  REQUIRE(torch::cuda::is_available());
  const Problem p = make_problem(2, 96, 64, 49152);  // Granite Code's vocabulary
  for (double alpha : {0.0, 0.5, 1.0}) {
    INFO("alpha " << alpha);
    const auto ref = reference(p, alpha);
    const auto f32 = fused(p, alpha, torch::kFloat, 37);
    REQUIRE_CLOSE(f32[0], ref[0], 1e-4);
    for (int i = 1; i < 4; ++i) REQUIRE_CLOSE(f32[i], ref[i], 1e-5);
    // bf16 (inputs rounded to 8 bits of mantissa): the loss to ~1e-2, the gradients to ~2% of their scale.
    const auto b16 = fused(p, alpha, torch::kBFloat16, 64);
    const double loss_error = granite::test::max_abs_diff(b16[0], ref[0]).max_abs;
    CHECK(loss_error < 2e-2);
    const double grad_scale = ref[1].abs().max().item<double>();
    CHECK(granite::test::max_abs_diff(b16[1], ref[1]).max_abs < 2e-2 * grad_scale + 1e-6);
  }
}
