// The fused inference kernels (granite/kernels/fused_ops.h, tag [cuda]) against the composite PyTorch ops they
// replace, on the GPU: rotary embedding and silu*up bit-exact in bf16, fp16 and fp32 (they reproduce every rounding);
// RMSNorm within one rounding of its input dtype (only the fp32 sum's order differs); the decode GEMV as accurate as
// cuBLAS; whole bf16 models with and without them; and the composite path kept wherever autograd records.
#include <catch2/catch.hpp>

#include <torch/cuda.h>
#include <torch/nn/functional/linear.h>

#include <cmath>

#include "granite/io/pretrained.h"
#include "granite/kernels/fused_ops.h"
#include "granite/nn/rms_norm.h"
#include "granite/nn/rotary.h"
#include "support/tensor_match.h"

namespace {

// Switches the fused kernels off for a scope (the composite reference), on again after.
struct CompositeOnly {
  CompositeOnly() { granite::kernels::set_fused_enabled(false); }
  ~CompositeOnly() { granite::kernels::set_fused_enabled(true); }
};

const torch::ScalarType kTypes[] = {torch::kBFloat16, torch::kHalf, torch::kFloat};

}  // namespace

TEST_CASE("fused rotary embedding equals apply_rope bit for bit", "[cuda][kernels]") {
  REQUIRE(torch::cuda::is_available());
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto dtype : kTypes) {
    INFO(dtype);
    const int64_t B = 3, T = 5, Hq = 8, Hk = 2, D = 64;
    const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    const auto q = torch::randn({B, T, Hq, D}, opts) * 4, k = torch::randn({B, T, Hk, D}, opts) * 4;
    auto positions = torch::randint(0, 4000, {B, T}, torch::kInt64).cuda();
    auto [cos, sin] = granite::rope_cos_sin(positions, D, 10000.0, dtype);
    REQUIRE(granite::kernels::use_fused(q));
    auto [q_rot, k_rot] = granite::kernels::rope(q, k, cos, sin);
    REQUIRE(torch::equal(q_rot.transpose(1, 2), granite::apply_rope(q.transpose(1, 2), cos, sin)));
    REQUIRE(torch::equal(k_rot.transpose(1, 2), granite::apply_rope(k.transpose(1, 2), cos, sin)));
    // cos/sin shared by the batch (1, T, D)
    auto [cos1, sin1] = granite::rope_cos_sin(positions.narrow(0, 0, 1), D, 10000.0, dtype);
    std::tie(q_rot, k_rot) = granite::kernels::rope(q, k, cos1, sin1);
    REQUIRE(torch::equal(q_rot.transpose(1, 2), granite::apply_rope(q.transpose(1, 2), cos1, sin1)));
  }
}

TEST_CASE("fused silu(gate) * up equals the composite ops bit for bit", "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  for (auto dtype : kTypes) {
    INFO(dtype);
    const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    const auto gate = torch::randn({2, 3, 1000}, opts) * 6, up = torch::randn({2, 3, 1000}, opts);
    REQUIRE(torch::equal(granite::kernels::silu_mul(gate, up), torch::silu(gate) * up));
  }
}

TEST_CASE("fused RMSNorm equals the composite RMSNorm up to one rounding", "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  for (auto dtype : kTypes) {
    for (int64_t C : {64, 100, 2560, 6144}) {
      INFO(dtype << " C=" << C);
      granite::RMSNorm norm(C, 1e-5);
      norm->weight.set_data(torch::rand({C}) + 0.5);
      norm->to(torch::kCUDA, dtype);
      const auto x = (torch::randn({7, 3, C}) * 3).to(torch::kCUDA, dtype);
      const auto fused = granite::kernels::rms_norm(x, norm->weight, 1e-5);
      torch::Tensor composite;
      {
        CompositeOnly off;
        composite = norm(x);
      }
      REQUIRE(norm(x).equal(fused));  // the module takes the fused path here
      // two roundings (normalized value, then times weight), each possibly one unit apart
      const double ulp = dtype == torch::kFloat ? 1e-6 : (dtype == torch::kHalf ? 2.0 / 1024 : 2.0 / 128);
      const auto rel = ((fused.to(torch::kFloat) - composite.to(torch::kFloat)).abs() /
                        composite.to(torch::kFloat).abs().clamp_min(1e-3));
      INFO("max relative difference " << rel.max().item<double>());
      REQUIRE(rel.max().item<double>() <= ulp);
      // in 16-bit types almost every element is identical: the fp32 sums differ in order only
      if (dtype != torch::kFloat) REQUIRE(fused.eq(composite).to(torch::kFloat).mean().item<double>() >= 0.99);
    }
  }
}

TEST_CASE("fused kernels stay out of autograd: with grad mode on the composite ops run and backward works",
          "[cuda][kernels]") {
  granite::RMSNorm norm(256, 1e-5);
  norm->to(torch::kCUDA, torch::kBFloat16);
  const auto x = torch::randn({4, 256}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA))
                     .requires_grad_(true);
  REQUIRE_FALSE(granite::kernels::use_fused(x));
  norm(x).sum().backward();
  REQUIRE(x.grad().defined());
  REQUIRE(norm->weight.grad().defined());
}

TEST_CASE("bf16 Llama logits with the fused kernels match the composite ops", "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  granite::LoadOptions opts;
  opts.device = torch::kCUDA;
  opts.dtype = torch::kBFloat16;
  const auto dir = granite::test::source_path("tests/fixtures/hf/llama_gqa_bias_untied_theta1e7");
  auto model = granite::load_pretrained(dir, opts);
  const auto ids = torch::randint(5, model->config().vocab_size, {2, 24}, torch::kInt64).cuda();
  const auto fused = model->forward(ids).to(torch::kFloat);
  torch::Tensor composite;
  {
    CompositeOnly off;
    composite = model->forward(ids).to(torch::kFloat);
  }
  // One bf16 rounding apart at most in a few norms, on O(1) logits: far inside bf16's own error against fp32.
  REQUIRE_CLOSE(fused, composite, 3e-2);
  REQUIRE(fused.argmax(-1).eq(composite.argmax(-1)).to(torch::kFloat).mean().item<double>() >= 0.95);
  // q/k/v and gate/up packed into one GEMM each, rope and silu*up reading their column ranges in place
  model->pack_for_inference();
  const auto packed = model->forward(ids).to(torch::kFloat);
  REQUIRE_CLOSE(packed, fused, 3e-2);
  REQUIRE(packed.argmax(-1).eq(fused.argmax(-1)).to(torch::kFloat).mean().item<double>() >= 0.95);
}

TEST_CASE("fused rope and silu*up read column ranges of a packed projection in place, equal to copies",
          "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  for (int64_t T : {1, 6}) {
    INFO("T=" << T);
    const int64_t B = 3, H = 4, Hk = 2, D = 32;
    const auto qkv = torch::randn({B, T, (H + 2 * Hk) * D}, opts);
    const auto q = qkv.narrow(-1, 0, H * D).view({B, T, H, D}), k = qkv.narrow(-1, H * D, Hk * D).view({B, T, Hk, D});
    auto [cos, sin] = granite::rope_cos_sin(torch::randint(0, 100, {B, T}, torch::kInt64).cuda(), D, 1e4,
                                            torch::kBFloat16);
    auto [q1, k1] = granite::kernels::rope(q, k, cos, sin);
    auto [q2, k2] = granite::kernels::rope(q.contiguous(), k.contiguous(), cos, sin);
    REQUIRE(torch::equal(q1, q2));
    REQUIRE(torch::equal(k1, k2));
    const auto gate_up = torch::randn({B, T, 2 * 96}, opts);
    const auto gate = gate_up.narrow(-1, 0, 96), up = gate_up.narrow(-1, 96, 96);
    REQUIRE(torch::equal(granite::kernels::silu_mul(gate, up), torch::silu(gate) * up));
  }
}

TEST_CASE("the decode GEMV is as close to the exact product as cuBLAS's linear, bias or none, 1 to 8 rows",
          "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  for (auto dtype : kTypes) {
    for (int64_t M : {1, 3, 8}) {
      for (auto [N, K] : {std::pair<int64_t, int64_t>{5, 64}, {2560, 2560}, {7680, 2560}, {2560, 10240}}) {
        for (bool biased : {true, false}) {
          INFO(dtype << " M=" << M << " N=" << N << " K=" << K << " bias=" << biased);
          const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
          const auto x = torch::randn({M, K}, opts), w = torch::randn({N, K}, opts) / std::sqrt(double(K));
          const auto b = biased ? torch::randn({N}, opts) : torch::Tensor();
          const auto exact = torch::nn::functional::linear(x.to(torch::kDouble), w.to(torch::kDouble),
                                                           biased ? b.to(torch::kDouble) : torch::Tensor());
          const auto ours = granite::kernels::linear(x, w, b);
          torch::Tensor theirs;
          {
            CompositeOnly off;
            theirs = granite::kernels::linear(x, w, b);  // F::linear: cuBLAS
          }
          REQUIRE(ours.sizes() == theirs.sizes());
          const double our_err = (ours.to(torch::kDouble) - exact).abs().max().item<double>();
          const double their_err = (theirs.to(torch::kDouble) - exact).abs().max().item<double>();
          INFO("max error: ours " << our_err << ", cuBLAS " << their_err);
          REQUIRE(our_err <= 2.0 * their_err + 1e-5);
        }
      }
    }
  }
  // more rows than the kernel takes: F::linear itself
  const auto x = torch::randn({9, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
  const auto w = torch::randn({32, 64}, x.options());
  REQUIRE(torch::equal(granite::kernels::linear(x, w), torch::nn::functional::linear(x, w)));
}
