// The fused inference kernels (granite/kernels/fused_ops.h, tag [cuda]) against the composite PyTorch ops they
// replace, on the GPU: rotary embedding and silu*up bit-exact in bf16, fp16 and fp32 (they reproduce every rounding);
// RMSNorm within one rounding of its input dtype (only the fp32 sum's order differs); the decode GEMV as accurate as
// cuBLAS; whole bf16 models with and without them; and the composite path kept wherever autograd records.
#include <catch2/catch.hpp>

#include <torch/cuda.h>
#include <torch/nn/functional/linear.h>

#include <cmath>
#include <tuple>

#include "granite/generate/static_decode.h"
#include "granite/io/pretrained.h"
#include "granite/kernels/fused_ops.h"
#include "granite/nn/attention.h"
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
using granite::kernels::GemvLayout;

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
          const auto ours = granite::kernels::gemv(x, w, b);
          const auto theirs = torch::nn::functional::linear(x, w, b);  // cuBLAS
          if (M <= granite::kernels::kGemvRowsBeatingCublas) REQUIRE(torch::equal(granite::kernels::linear(x, w, b), ours));
          REQUIRE(ours.sizes() == theirs.sizes());
          const double their_err = (theirs.to(torch::kDouble) - exact).abs().max().item<double>();
          // every layout built for M rows (the automatic choice is one of them)
          for (auto layout : {GemvLayout{1, 1}, GemvLayout{2, 1}, GemvLayout{1, 2}, GemvLayout{1, 4}}) {
            if (M > 1 && layout.rows_per_warp * layout.split > 1) continue;
            const auto pinned = granite::kernels::gemv(x, w, b, layout);
            const double our_err = (pinned.to(torch::kDouble) - exact).abs().max().item<double>();
            INFO("layout {" << layout.rows_per_warp << ", " << layout.split << "} max error: ours " << our_err
                            << ", cuBLAS " << their_err);
            REQUIRE(our_err <= 2.0 * their_err + 1e-5);
            // two rows a warp or one, each row's sum runs in the same order
            if (layout.split == 1) REQUIRE(torch::equal(pinned, granite::kernels::gemv(x, w, b, {1, 1})));
          }
        }
      }
    }
  }
  // more rows than gemv beats cuBLAS at, or than it takes at all: linear is F::linear itself
  for (int64_t M : {granite::kernels::kGemvRowsBeatingCublas + 1, int64_t(9)}) {
    const auto x = torch::randn({M, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
    const auto w = torch::randn({32, 64}, x.options());
    REQUIRE(torch::equal(granite::kernels::linear(x, w), torch::nn::functional::linear(x, w)));
  }
  const auto x9 = torch::randn({9, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
  REQUIRE_THROWS_WITH(granite::kernels::gemv(x9, torch::randn({32, 64}, x9.options())),
                      Catch::Contains("1..8 rows"));
  const auto x1 = x9.narrow(0, 0, 1), w1 = torch::randn({32, 64}, x9.options());
  REQUIRE_THROWS_WITH(granite::kernels::gemv(x1, w1, {}, {1, 3}), Catch::Contains("no kernel for layout {1, 3}"));
  REQUIRE_THROWS_WITH(granite::kernels::gemv(x9.narrow(0, 0, 2), w1, {}, {1, 2}),
                      Catch::Contains("no kernel for layout {1, 2} at 2 rows"));
}

TEST_CASE("the SwiGLU GEMV equals the packed gate/up GEMV followed by silu*up bit for bit", "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  for (auto dtype : kTypes) {
    for (int64_t M : {1, 3}) {
      for (auto [I, K] : {std::pair<int64_t, int64_t>{5, 64}, {1000, 512}, {2560, 2560}}) {
        for (bool biased : {true, false}) {
          INFO(dtype << " M=" << M << " I=" << I << " K=" << K << " bias=" << biased);
          const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
          const auto x = torch::randn({M, K}, opts), w = torch::randn({2 * I, K}, opts) / std::sqrt(double(K));
          const auto b = biased ? torch::randn({2 * I}, opts) : torch::Tensor();
          // a warp per gate/up pair sums each row as the one-row-a-warp GEMV; two warps a pair as the split GEMV
          for (int split : {1, 2}) {
            if (M > 1 && split > 1) continue;
            const auto gate_up = granite::kernels::gemv(x, w, b, {1, split});
            const auto want = granite::kernels::silu_mul(gate_up.narrow(-1, 0, I), gate_up.narrow(-1, I, I));
            const auto got = granite::kernels::gemv_swiglu(x, w, b, {2, split});
            REQUIRE(got.sizes() == want.sizes());
            REQUIRE(torch::equal(got, want));
          }
          // the model's entry: the fused form where linear() takes the GEMV (one row), else nothing
          const auto fused = granite::kernels::linear_swiglu(x, w, b);
          REQUIRE(fused.defined() == (M <= granite::kernels::kGemvRowsBeatingCublas));
          if (fused.defined()) REQUIRE(torch::equal(fused, granite::kernels::gemv_swiglu(x, w, b)));
        }
      }
    }
  }
  const auto x = torch::randn({1, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
  REQUIRE_THROWS_WITH(granite::kernels::gemv_swiglu(x, torch::randn({7, 64}, x.options())),
                      Catch::Contains("odd number of rows"));
  CompositeOnly off;
  REQUIRE_FALSE(granite::kernels::linear_swiglu(x, torch::randn({8, 64}, x.options())).defined());
}

TEST_CASE("the rope GEMV equals the packed q/k/v GEMV followed by rope_into_cache bit for bit", "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(10);
  for (auto dtype : kTypes) {
    for (auto [Hq, Hk, D] : {std::tuple<int64_t, int64_t, int64_t>{4, 2, 32}, {32, 32, 80}, {8, 1, 128}}) {
      for (int64_t B : {1, 3}) {
        for (bool biased : {true, false}) {
          for (bool device_slots : {true, false}) {
            INFO(dtype << " Hq=" << Hq << " Hk=" << Hk << " D=" << D << " B=" << B << " bias=" << biased
                       << " device slots=" << device_slots);
            const int64_t C = 256, N = (Hq + 2 * Hk) * D, Tmax = 9, at = 5;
            const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
            const auto x = torch::randn({B, 1, C}, opts), w = torch::randn({N, C}, opts) / std::sqrt(double(C));
            const auto b = biased ? torch::randn({N}, opts) : torch::Tensor();
            auto [cos, sin] = granite::rope_cos_sin(torch::randint(0, 100, {B, 1}, torch::kInt64).cuda(), D, 1e4,
                                                    dtype);
            const auto slots = device_slots ? torch::full({1}, at, torch::TensorOptions().dtype(torch::kInt64).device(
                                                                      torch::kCUDA))
                                            : torch::Tensor();
            const auto keys = torch::randn({B, Hk, Tmax, D}, opts), values = torch::randn({B, Hk, Tmax, D}, opts);
            for (int split : {1, 2}) {
              if (B > 1 && split > 1) continue;
              const auto want_k = keys.clone(), want_v = values.clone(), got_k = keys.clone(), got_v = values.clone();
              const auto qkv = granite::kernels::gemv(x.view({B, C}), w, b, {1, split}).view({B, 1, N});
              const auto q = qkv.narrow(-1, 0, Hq * D).view({B, 1, Hq, D});
              const auto k = qkv.narrow(-1, Hq * D, Hk * D).view({B, 1, Hk, D});
              const auto v = qkv.narrow(-1, (Hq + Hk) * D, Hk * D).view({B, 1, Hk, D});
              const auto want_q = granite::kernels::rope_into_cache(q, k, v, cos, sin, want_k, want_v, slots, at);
              const auto got_q = granite::kernels::gemv_rope_into_cache(x, w, b, Hq, Hk, cos, sin, got_k, got_v,
                                                                        slots, at, {2, split});
              REQUIRE(got_q.sizes() == want_q.sizes());
              REQUIRE(torch::equal(got_q, want_q));
              REQUIRE(torch::equal(got_k, want_k));
              REQUIRE(torch::equal(got_v, want_v));
            }
            // the model's entry: the fused form where linear() takes the GEMV (one sequence), else nothing
            const auto k1 = keys.clone(), v1 = values.clone(), k2 = keys.clone(), v2 = values.clone();
            const auto fused = granite::kernels::linear_rope_into_cache(x, w, b, Hq, Hk, cos, sin, k1, v1, slots, at);
            REQUIRE(fused.defined() == (B <= granite::kernels::kGemvRowsBeatingCublas));
            if (fused.defined()) {
              REQUIRE(torch::equal(fused, granite::kernels::gemv_rope_into_cache(x, w, b, Hq, Hk, cos, sin, k2, v2,
                                                                                 slots, at)));
              REQUIRE(torch::equal(k1, k2));
              REQUIRE(torch::equal(v1, v2));
            }
          }
        }
      }
    }
  }
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  const auto x = torch::randn({1, 1, 64}, opts), w = torch::randn({3 * 2 * 16, 64}, opts);
  auto [cos, sin] = granite::rope_cos_sin(torch::zeros({1, 1}, torch::kInt64).cuda(), 16, 1e4, torch::kBFloat16);
  const auto kv = torch::zeros({1, 2, 4, 16}, opts);
  REQUIRE_THROWS_WITH(granite::kernels::gemv_rope_into_cache(x, w, {}, 3, 2, cos, sin, kv, kv.clone(), {}, 0),
                      Catch::Contains("not (Hq + 2 Hk) heads"));
  REQUIRE_THROWS_WITH(granite::kernels::gemv_rope_into_cache(x, w, {}, 2, 2, cos, sin, kv, kv.clone(), {}, 4),
                      Catch::Contains("positions [4, 5) outside the buffers' 4"));
}

TEST_CASE("overlapped kernel launches change no result: decode steps equal with them on and off, graph and eager",
          "[cuda][kernels][generate]") {
  torch::NoGradGuard no_grad;
  granite::LoadOptions opts;
  opts.device = torch::kCUDA;
  opts.dtype = torch::kBFloat16;
  auto model = granite::load_pretrained(granite::test::source_path("tests/fixtures/hf/llama_gqa_bias_untied_theta1e7"),
                                        opts);
  model->eval();
  model->pack_for_inference();  // the packed q/k/v and the SwiGLU GEMV: every decode kernel
  const int64_t capacity = 24;
  const auto prompt = torch::tensor(std::vector<int64_t>{4, 8, 15, 16, 23}, torch::kInt64).unsqueeze(0).cuda();
  auto decode = [&](bool overlapped, bool graph) {
    granite::kernels::set_overlapped_launches(overlapped);
    granite::KVCache cache(model->config(), 1, capacity, torch::kBFloat16, torch::kCUDA);
    model->forward(prompt, {}, &cache);
    const auto valid = torch::ones({1, capacity}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
    granite::StaticDecoder decoder(*model, cache, valid, graph);
    std::vector<torch::Tensor> logits;
    for (int64_t step = 0; step < 6; ++step) {
      const int64_t slot = 5 + step;
      logits.push_back(decoder.step({30 + step}, slot, {slot}).clone());
    }
    REQUIRE(decoder.captured() == graph);
    granite::kernels::set_overlapped_launches(true);
    return logits;
  };
  const auto reference = decode(false, false);
  for (auto [overlapped, graph] : {std::pair{true, false}, {false, true}, {true, true}}) {
    INFO("overlapped " << overlapped << ", graph " << graph);
    const auto got = decode(overlapped, graph);
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(torch::equal(got[i], reference[i]));
  }
  // The packed model's steps (q/k/v GEMV with rope into the cache, SwiGLU GEMV) against separate projections:
  // the same steps up to the fp32 sums' order (bf16 logits of O(1)).
  model = granite::load_pretrained(granite::test::source_path("tests/fixtures/hf/llama_gqa_bias_untied_theta1e7"),
                                   opts);
  model->eval();
  const auto separate = decode(true, true);
  for (size_t i = 0; i < separate.size(); ++i) {
    REQUIRE_CLOSE(reference[i].to(torch::kFloat), separate[i].to(torch::kFloat), 3e-2);
  }
}

TEST_CASE("fused residual add + RMSNorm: the sum bit for bit, the norm as the fused RMSNorm of that sum",
          "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  for (auto dtype : kTypes) {
    for (int64_t C : {64, 2560}) {
      INFO(dtype << " C=" << C);
      const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
      const auto x = torch::randn({2, 3, C}, opts) * 3, delta = torch::randn({2, 3, C}, opts);
      const auto w = (torch::rand({C}) + 0.5).to(opts);
      const auto [sum, normed] = granite::kernels::add_rms_norm(x, delta, w, 1e-5);
      REQUIRE(torch::equal(sum, x + delta));
      REQUIRE(torch::equal(normed, granite::kernels::rms_norm(x + delta, w, 1e-5)));
      granite::RMSNorm norm(C, 1e-5);
      norm->weight.set_data(w);
      const auto [module_sum, module_normed] = norm->add_forward(x, delta);  // takes the fused path
      REQUIRE(torch::equal(module_sum, sum));
      REQUIRE(torch::equal(module_normed, normed));
    }
  }
}

TEST_CASE("fused rope into a KV cache equals rope followed by the cache's copies, at device slots or an offset",
          "[cuda][kernels]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  for (auto dtype : kTypes) {
    INFO(dtype);
    const int64_t B = 2, T = 3, H = 4, Hk = 2, D = 16, Tmax = 12;
    const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    // q, k, v as column ranges of one packed projection (strided rows), as Llama's packed q/k/v are
    const auto qkv = torch::randn({B, T, (H + 2 * Hk) * D}, opts);
    const auto q = qkv.narrow(-1, 0, H * D).view({B, T, H, D});
    const auto k = qkv.narrow(-1, H * D, Hk * D).view({B, T, Hk, D});
    const auto v = qkv.narrow(-1, (H + Hk) * D, Hk * D).view({B, T, Hk, D});
    auto [cos, sin] = granite::rope_cos_sin(torch::randint(0, 100, {B, T}, torch::kInt64).cuda(), D, 1e4, dtype);
    const auto [q_rot, k_rot] = granite::kernels::rope(q, k, cos, sin);
    for (bool at_slots : {true, false}) {
      INFO("slots " << at_slots);
      const auto keys = torch::randn({B, Hk, Tmax, D}, opts), values = torch::randn({B, Hk, Tmax, D}, opts);
      auto want_keys = keys.clone(), want_values = values.clone();
      torch::Tensor slots;
      if (at_slots) {
        slots = torch::tensor({7, 2, 10}, torch::kInt64).cuda();
        want_keys.index_copy_(2, slots, k_rot.transpose(1, 2));
        want_values.index_copy_(2, slots, v.transpose(1, 2));
      } else {
        want_keys.narrow(2, 5, T).copy_(k_rot.transpose(1, 2));
        want_values.narrow(2, 5, T).copy_(v.transpose(1, 2));
      }
      const auto q_out = granite::kernels::rope_into_cache(q, k, v, cos, sin, keys, values, slots, 5);
      REQUIRE(torch::equal(q_out, q_rot));
      REQUIRE(torch::equal(keys, want_keys));  // the other positions untouched
      REQUIRE(torch::equal(values, want_values));
    }
    const auto keys = torch::zeros({B, Hk, Tmax, D}, opts);
    REQUIRE_THROWS_WITH(granite::kernels::rope_into_cache(q, k, v, cos, sin, keys, keys.clone(), {}, Tmax - 1),
                        Catch::Contains("outside the buffers"));
  }
}

TEST_CASE("fused decode attention is as close to exact attention as SDPA: GQA, masks, cache views, long contexts",
          "[cuda][kernels][attention]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(9);
  for (auto dtype : kTypes) {
    for (auto [H, Hkv, D, Tk] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{8, 8, 80, 384}, {8, 2, 64, 37},
                                 {4, 1, 128, 2050}}) {
      for (int mask_kind : {0, 1, 2}) {  // none, additive per row, additive shared by the batch
        INFO(dtype << " H=" << H << " Hkv=" << Hkv << " D=" << D << " Tk=" << Tk << " mask " << mask_kind);
        const int64_t B = 3, Tmax = Tk + 5;
        const auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        // q as the fused rope leaves it: (B, 1, H, D) contiguous, seen as (B, H, 1, D); k, v views of cache buffers
        const auto q = torch::randn({B, 1, H, D}, opts).transpose(1, 2);
        const auto keys = torch::randn({B, Hkv, Tmax, D}, opts), values = torch::randn({B, Hkv, Tmax, D}, opts);
        const auto k = keys.narrow(2, 0, Tk), v = values.narrow(2, 0, Tk);
        torch::Tensor mask, allowed;
        if (mask_kind > 0) {
          allowed = torch::rand({mask_kind == 1 ? B : 1, 1, 1, Tk}, torch::kCUDA) < 0.7;
          allowed.select(3, Tk - 1).fill_(true);  // the new token always sees itself
          mask = granite::additive_mask(allowed, dtype);
        }
        const double scale = 1.0 / std::sqrt(double(D));
        const auto ours = granite::kernels::decode_attention(q, k, v, scale, mask);
        if (dtype == torch::kFloat && D > 64) {  // rows of more than 16 16-byte vectors: not taken
          REQUIRE_FALSE(ours.defined());
          continue;
        }
        REQUIRE(ours.defined());
        REQUIRE(ours.sizes() == q.sizes());
        if (allowed.defined()) REQUIRE(torch::equal(granite::kernels::decode_attention(q, k, v, scale, allowed), ours));
        // through causal_attention (Auto) the model gets exactly this
        REQUIRE(torch::equal(granite::causal_attention(q, k, v, scale, 0.0, granite::AttentionBackend::Auto, mask),
                             ours));
        const auto rep = H / Hkv;
        auto exact = granite::causal_attention(q.to(torch::kDouble), k.to(torch::kDouble).repeat_interleave(rep, 1),
                                               v.to(torch::kDouble).repeat_interleave(rep, 1), scale, 0.0,
                                               granite::AttentionBackend::Math,
                                               mask.defined() ? mask.to(torch::kDouble) : mask);
        torch::Tensor sdpa;
        {
          CompositeOnly off;
          sdpa = granite::causal_attention(q, k, v, scale, 0.0, granite::AttentionBackend::Auto, mask);
        }
        const double our_err = (ours.to(torch::kDouble) - exact).abs().max().item<double>();
        const double sdpa_err = (sdpa.to(torch::kDouble) - exact).abs().max().item<double>();
        INFO("max error: ours " << our_err << ", SDPA " << sdpa_err);
        REQUIRE(our_err <= 2.0 * sdpa_err + 1e-6);
      }
    }
  }
  // not a decode step, or too many keys for shared memory: not applicable (the caller's SDPA/math path runs)
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  const auto q2 = torch::randn({1, 4, 2, 64}, opts), k2 = torch::randn({1, 4, 9, 64}, opts);
  REQUIRE_FALSE(granite::kernels::decode_attention(q2, k2, k2, 0.125, {}).defined());
  const auto q1 = torch::randn({1, 4, 1, 64}, opts), long_k = torch::randn({1, 4, 20000, 64}, opts);
  REQUIRE_FALSE(granite::kernels::decode_attention(q1, long_k, long_k, 0.125, {}).defined());
}
