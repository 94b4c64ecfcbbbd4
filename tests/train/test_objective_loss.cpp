// The alpha-weighted CLM/FIM loss (granite/train/objective_loss.h) against references written with plain LibTorch
// ops the Hugging Face way (full fp32/fp64 logits, cross_entropy with ignore_index -100 and reduction sum divided by
// the objective's global token count): loss values, gradients w.r.t. hidden, weight and bias, the logging sums,
// chunking, gradient accumulation, the empty-objective rule and input errors.
// REQUIRE throughout, never CHECK: Debian's LibTorch includes glog, whose CHECK macro replaces Catch's when a torch
// header comes after catch.hpp (without the precompiled header).
#include <catch2/catch.hpp>

#include <torch/autograd.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <cmath>
#include <vector>

#include "granite/core/check.h"
#include "granite/train/objective_loss.h"
#include "support/tensor_match.h"

using Catch::Matchers::Contains;
using granite::Objective;
using granite::ObjectiveCounts;

namespace {

namespace F = torch::nn::functional;

struct Batch {
  torch::Tensor h, w, b, targets, obj;  // b may be undefined
};

// Random objectives (ignored with probability p_ignore, else CLM / FIM alike); targets of ignored tokens are -100.
Batch make_batch(std::vector<int64_t> lead, int64_t d, int64_t V, torch::ScalarType dtype, bool bias = true,
                 double p_ignore = 0.3) {
  Batch b;
  auto hshape = lead;
  hshape.push_back(d);
  b.h = torch::randn(hshape, torch::kDouble).to(dtype);
  b.w = (torch::randn({V, d}, torch::kDouble) * 0.4).to(dtype);
  if (bias) b.b = (torch::randn({V}, torch::kDouble) * 0.5).to(dtype);
  auto u = torch::rand(lead, torch::kDouble);
  auto obj = torch::where(u < p_ignore, torch::zeros_like(u),
                          torch::where(u < p_ignore + (1 - p_ignore) / 2, torch::ones_like(u), torch::full_like(u, 2)));
  b.obj = obj.to(torch::kByte);
  b.targets = torch::randint(0, V, lead, torch::kLong).masked_fill(b.obj.eq(0), -100);
  return b;
}

// HF-style sum of token cross-entropies over the tokens of one objective.
torch::Tensor hf_ce_sum(const torch::Tensor& logits2d, const torch::Tensor& targets, const torch::Tensor& obj,
                        Objective which) {
  auto t = targets.reshape({-1}).masked_fill(obj.reshape({-1}).ne(static_cast<int>(which)), -100);
  return F::cross_entropy(logits2d, t, F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
}

struct Result {
  torch::Tensor loss, gh, gw, gb;
  double clm_sum = 0, fim_sum = 0;
};

// The reference: full logits, upcast (fp64 stays fp64), HF cross-entropy per objective, the empty-objective rule
// written out from the definition, autograd for the gradients.
Result reference(const Batch& in, const ObjectiveCounts& global, double alpha) {
  auto h = in.h.detach().clone().requires_grad_(true);
  auto w = in.w.detach().clone().requires_grad_(true);
  torch::Tensor b;
  if (in.b.defined()) b = in.b.detach().clone().requires_grad_(true);
  const auto up = in.h.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto logits = at::linear(h, w, b).to(up).reshape({-1, w.size(0)});
  auto ce_clm = hf_ce_sum(logits, in.targets, in.obj, Objective::kClm);
  auto ce_fim = hf_ce_sum(logits, in.targets, in.obj, Objective::kFim);
  const double W = (global.clm > 0 ? alpha : 0.0) + (global.fim > 0 ? 1 - alpha : 0.0);
  auto loss = (ce_clm + ce_fim) * 0;  // connected zero
  if (W > 0 && global.clm > 0) loss = loss + (alpha / W) * ce_clm / static_cast<double>(global.clm);
  if (W > 0 && global.fim > 0) loss = loss + ((1 - alpha) / W) * ce_fim / static_cast<double>(global.fim);
  loss.backward();
  Result r;
  r.loss = loss.detach();
  r.gh = h.grad();
  r.gw = w.grad();
  if (b.defined()) r.gb = b.grad();
  r.clm_sum = ce_clm.item<double>();
  r.fim_sum = ce_fim.item<double>();
  return r;
}

struct Fused {
  granite::ObjectiveLoss out;
  torch::Tensor gh, gw, gb;
};

Fused fused(const Batch& in, const ObjectiveCounts& global, double alpha, int64_t chunk_rows) {
  auto h = in.h.detach().clone().requires_grad_(true);
  auto w = in.w.detach().clone().requires_grad_(true);
  torch::Tensor b;
  if (in.b.defined()) b = in.b.detach().clone().requires_grad_(true);
  Fused f;
  f.out = granite::objective_loss(h, w, b, in.targets, in.obj, global, alpha, chunk_rows);
  f.out.loss.backward();
  f.gh = h.grad();
  f.gw = w.grad();
  if (b.defined()) f.gb = b.grad();
  return f;
}

void require_matches(const Fused& f, const Result& r, double tol) {
  REQUIRE_CLOSE(f.out.loss, r.loss, tol);
  REQUIRE_CLOSE(f.gh, r.gh, tol);
  REQUIRE_CLOSE(f.gw, r.gw, tol);
  REQUIRE(f.gb.defined() == r.gb.defined());
  if (r.gb.defined()) REQUIRE_CLOSE(f.gb, r.gb, tol);
}

bool all_zero(const torch::Tensor& t) { return t.defined() && t.eq(0).all().item<bool>(); }

}  // namespace

TEST_CASE("count_objectives and loss_coefficients follow the empty-objective rule", "[train][loss]") {
  auto obj = torch::tensor({0, 1, 2, 1, 2, 2, 0, 1}, torch::kByte).reshape({2, 4});
  auto c = granite::count_objectives(obj);
  REQUIRE(c.clm == 3);
  REQUIRE(c.fim == 3);
  REQUIRE(granite::count_objectives(torch::zeros({0}, torch::kByte)) == ObjectiveCounts{});
  REQUIRE_THROWS_WITH(granite::count_objectives(torch::tensor({0, 3}, torch::kByte)),
                      Contains("value 3 is not an objective"));
  REQUIRE_THROWS_WITH(granite::count_objectives(torch::tensor({0, 1}, torch::kLong)), Contains("must be uint8"));

  auto k = granite::loss_coefficients({10, 5}, 0.5);
  REQUIRE(k.clm == Approx(0.5 / 10));
  REQUIRE(k.fim == Approx(0.5 / 5));
  k = granite::loss_coefficients({10, 5}, 0.3);
  REQUIRE(k.clm == Approx(0.3 / 10));
  REQUIRE(k.fim == Approx(0.7 / 5));
  // One objective absent: the other gets the whole weight, whatever alpha (unless its own weight is 0).
  k = granite::loss_coefficients({10, 0}, 0.5);
  REQUIRE(k.clm == Approx(1.0 / 10));
  REQUIRE(k.fim == 0);
  k = granite::loss_coefficients({0, 4}, 0.9);
  REQUIRE(k.clm == 0);
  REQUIRE(k.fim == Approx(1.0 / 4));
  // W == 0: everything 0.
  for (auto [counts, alpha] : std::vector<std::pair<ObjectiveCounts, double>>{
           {{0, 4}, 1.0}, {{10, 0}, 0.0}, {{0, 0}, 0.5}, {{0, 0}, 1.0}}) {
    k = granite::loss_coefficients(counts, alpha);
    REQUIRE(k.clm == 0);
    REQUIRE(k.fim == 0);
  }
  for (double bad : {-0.1, 1.5, std::nan("")})
    REQUIRE_THROWS_WITH(granite::loss_coefficients({1, 1}, bad), Contains("alpha (the CLM weight) must be in [0, 1]"));
}

TEST_CASE("fused loss matches the HF-style reference in fp64 for every alpha and chunk size", "[train][loss]") {
  torch::manual_seed(1);
  const int64_t V = 97, d = 24;
  for (bool bias : {true, false}) {
    for (auto lead : std::vector<std::vector<int64_t>>{{3, 20}, {45}}) {
      auto in = make_batch(lead, d, V, torch::kDouble, bias);
      const auto global = granite::count_objectives(in.obj);
      const int64_t K = global.total();
      REQUIRE(K > 3);
      for (double alpha : {0.0, 0.5, 1.0, 0.3}) {
        const auto ref = reference(in, global, alpha);
        // 1 row per chunk, a size that does not divide the active rows, exactly K, and larger than K.
        for (int64_t chunk : {int64_t(1), K - 1, K, int64_t(2048)}) {
          INFO("bias " << bias << " dims " << lead.size() << " alpha " << alpha << " chunk " << chunk << " K " << K);
          auto f = fused(in, global, alpha, chunk);
          REQUIRE(f.out.loss.dim() == 0);
          REQUIRE(f.out.loss.scalar_type() == torch::kDouble);
          require_matches(f, ref, 1e-10);
          REQUIRE(f.out.tokens == global);
          REQUIRE(f.out.clm_sum == Approx(ref.clm_sum).epsilon(1e-12));
          REQUIRE(f.out.fim_sum == Approx(ref.fim_sum).epsilon(1e-12));
          // Ignored rows get exactly zero gradient.
          auto ignored = in.obj.eq(0);
          REQUIRE(all_zero(f.gh.masked_select(ignored.unsqueeze(-1))));
        }
      }
    }
  }
}

TEST_CASE("gradient accumulation: 3 micro-batches with global counts sum to the whole batch", "[train][loss]") {
  torch::manual_seed(2);
  const int64_t V = 64, d = 16, T = 22;
  auto in = make_batch({3, T}, d, V, torch::kDouble);
  // Micro-batch 1 has no FIM token of its own (FIM is present globally): its FIM weight must still come from the
  // global counts.
  in.obj[1].masked_fill_(in.obj[1].eq(2), 1);
  const auto global = granite::count_objectives(in.obj);
  REQUIRE(global.fim > 0);
  for (double alpha : {0.5, 0.0, 1.0}) {
    INFO("alpha " << alpha);
    const auto ref = reference(in, global, alpha);
    const auto whole = fused(in, global, alpha, 5);
    require_matches(whole, ref, 1e-10);

    auto h = in.h.detach().clone().requires_grad_(true);
    auto w = in.w.detach().clone().requires_grad_(true);
    auto b = in.b.detach().clone().requires_grad_(true);
    auto total = torch::zeros({}, torch::kDouble);
    granite::LossReport report;
    for (int64_t i = 0; i < 3; ++i) {
      auto out = granite::objective_loss(h.narrow(0, i, 1), w, b, in.targets.narrow(0, i, 1), in.obj.narrow(0, i, 1),
                                         global, alpha, 4);
      out.loss.backward();  // accumulates into .grad as gradient accumulation does
      total += out.loss.detach();
      report.add(out);
    }
    REQUIRE_CLOSE(total, whole.out.loss, 1e-12);
    REQUIRE_CLOSE(total, ref.loss, 1e-10);
    REQUIRE_CLOSE(h.grad(), whole.gh, 1e-12);
    REQUIRE_CLOSE(w.grad(), whole.gw, 1e-12);
    REQUIRE_CLOSE(b.grad(), whole.gb, 1e-12);
    REQUIRE_CLOSE(w.grad(), ref.gw, 1e-10);
    // The report of the micro-batches gives the global means and loss.
    REQUIRE(report.tokens == global);
    REQUIRE(report.clm_loss() == Approx(ref.clm_sum / global.clm).epsilon(1e-12));
    REQUIRE(report.fim_loss() == Approx(ref.fim_sum / global.fim).epsilon(1e-12));
    REQUIRE(report.loss(alpha) == Approx(ref.loss.item<double>()).epsilon(1e-12));
  }
}

TEST_CASE("fused loss in float32 matches the fp32 reference", "[train][loss]") {
  torch::manual_seed(3);
  auto in = make_batch({4, 25}, 32, 211, torch::kFloat);
  const auto global = granite::count_objectives(in.obj);
  const auto ref = reference(in, global, 0.5);
  const auto f = fused(in, global, 0.5, 13);
  REQUIRE(f.out.loss.scalar_type() == torch::kFloat);
  REQUIRE(f.gh.scalar_type() == torch::kFloat);
  require_matches(f, ref, 1e-5);
  REQUIRE(f.out.clm_sum == Approx(ref.clm_sum).epsilon(1e-5));
  REQUIRE(f.out.fim_sum == Approx(ref.fim_sum).epsilon(1e-5));
}

TEST_CASE("fused loss in bfloat16 is close to the fp32 reference (smoke)", "[train][loss]") {
  torch::manual_seed(4);
  auto in = make_batch({2, 30}, 32, 150, torch::kBFloat16);
  const auto global = granite::count_objectives(in.obj);
  Batch up = in;
  up.h = in.h.to(torch::kFloat);
  up.w = in.w.to(torch::kFloat);
  up.b = in.b.to(torch::kFloat);
  const auto ref = reference(up, global, 0.5);
  const auto f = fused(in, global, 0.5, 16);
  REQUIRE(f.out.loss.scalar_type() == torch::kFloat);  // logits upcast: the loss is fp32
  REQUIRE(f.gh.scalar_type() == torch::kBFloat16);
  REQUIRE(f.gw.scalar_type() == torch::kBFloat16);
  REQUIRE(f.gb.scalar_type() == torch::kBFloat16);
  REQUIRE_CLOSE(f.out.loss, ref.loss, 0.02 * ref.loss.abs().item<double>());
  REQUIRE_CLOSE(f.gh.to(torch::kFloat), ref.gh, 0.03 * ref.gh.abs().max().item<double>());
  REQUIRE_CLOSE(f.gw.to(torch::kFloat), ref.gw, 0.03 * ref.gw.abs().max().item<double>());
  REQUIRE_CLOSE(f.gb.to(torch::kFloat), ref.gb, 0.03 * ref.gb.abs().max().item<double>());
}

TEST_CASE("empty objectives: the present one takes the whole weight, W == 0 gives an exact zero", "[train][loss]") {
  torch::manual_seed(5);
  const int64_t V = 80, d = 20;

  SECTION("no FIM token, alpha 0.5: plain mean CLM cross-entropy") {
    auto in = make_batch({2, 15}, d, V, torch::kDouble);
    in.obj.masked_fill_(in.obj.eq(2), 1);
    const auto global = granite::count_objectives(in.obj);
    REQUIRE(global.fim == 0);
    // Reference: HF's mean cross-entropy over the CLM tokens, nothing about alpha.
    auto h = in.h.clone().requires_grad_(true);
    auto w = in.w.clone().requires_grad_(true);
    auto b = in.b.clone().requires_grad_(true);
    auto mean = F::cross_entropy(at::linear(h, w, b).reshape({-1, V}), in.targets.reshape({-1}),
                                 F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kMean));
    mean.backward();
    const auto f = fused(in, global, 0.5, 7);
    REQUIRE_CLOSE(f.out.loss, mean.detach(), 1e-10);
    REQUIRE_CLOSE(f.gh, h.grad(), 1e-10);
    REQUIRE_CLOSE(f.gw, w.grad(), 1e-10);
    REQUIRE_CLOSE(f.gb, b.grad(), 1e-10);
    REQUIRE(f.out.fim_sum == 0);
    granite::LossReport report;
    report.add(f.out);
    REQUIRE(std::isnan(report.fim_loss()));
    REQUIRE(report.clm_loss() == Approx(mean.item<double>()).epsilon(1e-12));
    REQUIRE(report.loss(0.5) == Approx(mean.item<double>()).epsilon(1e-12));
  }

  SECTION("only FIM tokens, alpha 0.5: plain mean FIM cross-entropy") {
    auto in = make_batch({2, 15}, d, V, torch::kDouble);
    in.obj.masked_fill_(in.obj.eq(1), 2);
    const auto global = granite::count_objectives(in.obj);
    REQUIRE(global.clm == 0);
    auto h = in.h.clone().requires_grad_(true);
    auto mean = F::cross_entropy(at::linear(h, in.w, in.b).reshape({-1, V}), in.targets.reshape({-1}),
                                 F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kMean));
    mean.backward();
    const auto f = fused(in, global, 0.5, 4);
    REQUIRE_CLOSE(f.out.loss, mean.detach(), 1e-10);
    REQUIRE_CLOSE(f.gh, h.grad(), 1e-10);
  }

  SECTION("alpha 1 with only FIM tokens, or alpha 0 with only CLM tokens: loss 0, zero gradients") {
    for (auto [alpha, keep] : std::vector<std::pair<double, int>>{{1.0, 2}, {0.0, 1}}) {
      INFO("alpha " << alpha);
      auto in = make_batch({3, 10}, d, V, torch::kDouble);
      in.obj.masked_fill_(in.obj.eq(3 - keep), keep);
      const auto global = granite::count_objectives(in.obj);
      const auto ref = reference(in, global, alpha);  // the logging sums
      const auto f = fused(in, global, alpha, 8);
      REQUIRE(f.out.loss.item<double>() == 0.0);
      REQUIRE(all_zero(f.gh));
      REQUIRE(all_zero(f.gw));
      REQUIRE(all_zero(f.gb));
      // Still logged.
      REQUIRE(f.out.clm_sum == Approx(ref.clm_sum).epsilon(1e-12));
      REQUIRE(f.out.fim_sum == Approx(ref.fim_sum).epsilon(1e-12));
      REQUIRE(f.out.tokens == global);
      granite::LossReport report;
      report.add(f.out);
      REQUIRE(report.loss(alpha) == 0.0);
    }
  }

  SECTION("every token ignored: loss 0, zero gradients, zero counts") {
    for (double alpha : {0.5, 1.0}) {
      auto in = make_batch({2, 12}, d, V, torch::kDouble);
      in.obj.zero_();
      in.targets.fill_(-100);
      const auto f = fused(in, {}, alpha, 5);
      REQUIRE(f.out.loss.dim() == 0);
      REQUIRE(f.out.loss.item<double>() == 0.0);
      REQUIRE(all_zero(f.gh));
      REQUIRE(all_zero(f.gw));
      REQUIRE(all_zero(f.gb));
      REQUIRE(f.out.tokens == ObjectiveCounts{});
      REQUIRE(f.out.clm_sum == 0);
      REQUIRE(f.out.fim_sum == 0);
      granite::LossReport report;
      report.add(f.out);
      REQUIRE(std::isnan(report.clm_loss()));
      REQUIRE(report.loss(alpha) == 0.0);
    }
  }
}

TEST_CASE("inputs that do not require grad get no gradient", "[train][loss]") {
  torch::manual_seed(6);
  auto in = make_batch({2, 16}, 16, 60, torch::kDouble);
  const auto global = granite::count_objectives(in.obj);
  const auto ref = reference(in, global, 0.5);

  // Frozen head: only hidden requires grad.
  auto h = in.h.clone().requires_grad_(true);
  auto out = granite::objective_loss(h, in.w, in.b, in.targets, in.obj, global, 0.5, 6);
  REQUIRE(out.loss.requires_grad());
  out.loss.backward();
  REQUIRE_CLOSE(h.grad(), ref.gh, 1e-10);
  REQUIRE_FALSE(in.w.grad().defined());

  // Only the weight requires grad (no bias).
  auto w = in.w.clone().requires_grad_(true);
  Batch nb = in;
  nb.b = torch::Tensor();
  const auto ref_nb = reference(nb, global, 0.5);
  out = granite::objective_loss(in.h, w, torch::Tensor(), in.targets, in.obj, global, 0.5, 6);
  out.loss.backward();
  REQUIRE_CLOSE(w.grad(), ref_nb.gw, 1e-10);

  // Nothing requires grad, and under NoGradGuard: just the value.
  out = granite::objective_loss(in.h, in.w, in.b, in.targets, in.obj, global, 0.5, 6);
  REQUIRE_FALSE(out.loss.requires_grad());
  REQUIRE_CLOSE(out.loss, ref.loss, 1e-10);
  {
    torch::NoGradGuard no_grad;
    out = granite::objective_loss(in.h.clone().requires_grad_(true), in.w, in.b, in.targets, in.obj, global, 0.5, 6);
    REQUIRE_FALSE(out.loss.requires_grad());
    REQUIRE_CLOSE(out.loss, ref.loss, 1e-10);
  }
}

TEST_CASE("objective_loss rejects bad input with clear errors", "[train][loss]") {
  torch::manual_seed(7);
  const int64_t V = 50, d = 16;
  auto in = make_batch({2, 10}, d, V, torch::kDouble);
  in.obj[0][0] = 1;
  in.obj[0][1] = 2;
  in.targets[0][0] = 3;
  in.targets[0][1] = 4;
  const auto global = granite::count_objectives(in.obj);
  auto call = [&](const Batch& b, ObjectiveCounts g, double alpha, int64_t chunk = 8) {
    return granite::objective_loss(b.h, b.w, b.b, b.targets, b.obj, g, alpha, chunk);
  };
  REQUIRE_NOTHROW(call(in, global, 0.5));  // -100 on ignored tokens is fine

  for (double alpha : {1.2, -0.5})
    REQUIRE_THROWS_WITH(call(in, global, alpha), Contains("alpha (the CLM weight) must be in [0, 1], got"));

  SECTION("target outside [0, V) on a CLM / FIM token") {
    Batch bad = in;
    bad.targets = in.targets.clone();
    bad.targets[0][0] = V;
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("target 50 of a clm token at [0, 0] is outside [0, 50)"));
    bad.targets[0][0] = 3;
    bad.targets[0][1] = -100;
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("target -100 of a fim token at [0, 1] is outside [0, 50)"));
  }
  SECTION("mismatched shapes and dtypes") {
    Batch bad = in;
    bad.targets = torch::zeros({2, 11}, torch::kLong);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("targets shape [2, 11] does not match hidden's leading shape"));
    bad = in;
    bad.obj = torch::zeros({20}, torch::kByte);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("objectives shape [20] does not match"));
    bad = in;
    bad.w = torch::zeros({V, d + 1}, torch::kDouble);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("lm_weight must be (V, 16)"));
    bad = in;
    bad.w = in.w.to(torch::kFloat);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("lm_weight dtype"));
    bad = in;
    bad.b = torch::zeros({V + 1}, torch::kDouble);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("lm_bias must be (50)"));
    bad = in;
    bad.targets = in.targets.to(torch::kInt);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("targets must be int64"));
    bad = in;
    bad.obj = in.obj.to(torch::kLong);
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("objectives must be uint8"));
    bad = in;
    bad.h = in.h.reshape({2, 10, 4, 4});
    REQUIRE_THROWS_WITH(call(bad, global, 0.5), Contains("hidden must be (B, T, d) or (N, d)"));
  }
  SECTION("global counts smaller than the micro-batch's, chunk_rows < 1") {
    REQUIRE_THROWS_WITH(call(in, {global.clm - 1, global.fim}, 0.5),
                        Contains("are smaller than this micro-batch's"));
    REQUIRE_THROWS_WITH(call(in, global, 0.5, 0), Contains("chunk_rows must be >= 1"));
  }
}
