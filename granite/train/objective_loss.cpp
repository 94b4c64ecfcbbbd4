#include "granite/train/objective_loss.h"

#include <torch/autograd.h>
#include <torch/types.h>

#include <limits>

#include "granite/core/check.h"

namespace granite {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// fp32 for every float dtype but fp64, which stays fp64 (HF: logits.float()).
torch::ScalarType compute_dtype(torch::ScalarType t) { return t == torch::kDouble ? torch::kDouble : torch::kFloat; }

// Fused LM head + per-row weighted cross-entropy over the active rows of `hidden`.
// Inputs: hidden (N, d), weight (V, d), bias (V) or nothing, rows (K) int64 indices of the active rows of hidden,
// targets (K) int64 in [0, V), coef (K) compute dtype. Outputs: loss = sum_k coef_k * ce_k (scalar, compute dtype,
// differentiable) and ce (K) (the per-row cross-entropies, not differentiable, for logging).
// Saved for backward: the gathered active rows, weight, bias, targets, coef, and the per-row log-sum-exp; never the
// logits, which backward recomputes chunk by chunk.
struct FusedLinearCrossEntropy : public torch::autograd::Function<FusedLinearCrossEntropy> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const c10::optional<torch::Tensor>& bias_opt, const torch::Tensor& rows,
                               const torch::Tensor& targets, const torch::Tensor& coef, int64_t chunk_rows,
                               bool all_coef_zero) {
    const torch::Tensor bias = bias_opt.has_value() ? *bias_opt : torch::Tensor();
    const auto acc = compute_dtype(hidden.scalar_type());
    const int64_t K = rows.size(0);
    auto h_rows = hidden.index_select(0, rows);  // (K, d): ignored rows cost nothing from here on
    auto lse = torch::empty({K}, hidden.options().dtype(acc));
    auto ce = torch::empty({K}, hidden.options().dtype(acc));
    for (int64_t start = 0; start < K; start += chunk_rows) {
      const int64_t n = std::min(chunk_rows, K - start);
      auto logits = at::linear(h_rows.narrow(0, start, n), weight, bias).to(acc);  // (n, V)
      auto l = at::logsumexp(logits, 1);
      auto picked = logits.gather(1, targets.narrow(0, start, n).unsqueeze(1)).squeeze(1);
      lse.narrow(0, start, n).copy_(l);
      ce.narrow(0, start, n).copy_(l - picked);
    }
    auto loss = K > 0 ? at::dot(ce, coef) : torch::zeros({}, ce.options());

    ctx->save_for_backward({h_rows, weight, bias, targets, coef, lse});
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["num_rows"] = hidden.size(0);
    ctx->saved_data["chunk_rows"] = chunk_rows;
    ctx->saved_data["all_coef_zero"] = all_coef_zero;
    ctx->saved_data["need_hidden"] = hidden.requires_grad();
    ctx->saved_data["need_weight"] = weight.requires_grad();
    ctx->saved_data["need_bias"] = bias.defined() && bias.requires_grad();
    ctx->mark_non_differentiable({ce});
    return {loss, ce};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto& h_rows = saved[0];
    const auto& weight = saved[1];
    const auto& bias = saved[2];
    const auto& targets = saved[3];
    const auto& coef = saved[4];
    const auto& lse = saved[5];
    const auto rows = ctx->saved_data["rows"].toTensor();
    const int64_t N = ctx->saved_data["num_rows"].toInt();
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const bool all_coef_zero = ctx->saved_data["all_coef_zero"].toBool();
    const bool need_h = ctx->saved_data["need_hidden"].toBool();
    const bool need_w = ctx->saved_data["need_weight"].toBool();
    const bool need_b = ctx->saved_data["need_bias"].toBool();

    const auto dtype = h_rows.scalar_type();
    const auto acc = compute_dtype(dtype);
    const int64_t K = h_rows.size(0);
    const int64_t d = h_rows.size(1);

    torch::Tensor grad_h, grad_w, grad_b;
    if (need_h) grad_h = torch::zeros({N, d}, h_rows.options());  // ignored rows get exact zeros
    // Weight/bias gradients accumulate over chunks in the compute dtype, cast to the parameter dtype at the end.
    if (need_w) grad_w = torch::zeros(weight.sizes(), weight.options().dtype(acc));
    if (need_b) grad_b = torch::zeros(bias.sizes(), bias.options().dtype(acc));

    if (!all_coef_zero && K > 0 && (need_h || need_w || need_b)) {
      // d loss / d logit[k, v] = coef_k * (softmax_kv - [v == target_k]) * grad_output
      auto scale = coef * grad_outputs[0].to(acc);  // (K)
      for (int64_t start = 0; start < K; start += chunk_rows) {
        const int64_t n = std::min(chunk_rows, K - start);
        auto h_c = h_rows.narrow(0, start, n);
        auto t_c = targets.narrow(0, start, n).unsqueeze(1);
        auto p = at::linear(h_c, weight, bias).to(acc);  // recomputed logits (n, V), fresh: modified in place
        p.sub_(lse.narrow(0, start, n).unsqueeze(1)).exp_();  // softmax
        p.scatter_(1, t_c, p.gather(1, t_c) - 1);
        p.mul_(scale.narrow(0, start, n).unsqueeze(1));
        if (need_b) grad_b.add_(p.sum(0));
        auto g = p.to(dtype);  // grad of the logits in the model dtype (HF: backward of .float())
        if (need_h) grad_h.index_copy_(0, rows.narrow(0, start, n), at::mm(g, weight));
        if (need_w) {
          if (acc == dtype)
            grad_w.addmm_(g.t(), h_c);
          else
            grad_w.add_(at::mm(g.t(), h_c));
        }
      }
    }
    if (need_w) grad_w = grad_w.to(weight.scalar_type());
    if (need_b) grad_b = grad_b.to(bias.scalar_type());
    // One gradient per forward argument (after ctx): hidden, weight, bias, rows, targets, coef, chunk_rows, flag.
    return {grad_h, grad_w, grad_b, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

void check_alpha(double alpha) {
  GRANITE_CHECK(alpha >= 0.0 && alpha <= 1.0, "objective loss: alpha (the CLM weight) must be in [0, 1], got ", alpha);
}

}  // namespace

ObjectiveCounts count_objectives(const torch::Tensor& objectives) {
  GRANITE_CHECK(objectives.defined(), "objectives: undefined tensor");
  GRANITE_CHECK(objectives.scalar_type() == torch::kByte, "objectives must be uint8 (Objective values), got ",
                objectives.scalar_type());
  ObjectiveCounts c;
  if (objectives.numel() == 0) return c;
  auto flat = objectives.reshape(-1);
  // One read-back: [clm, fim, max].
  auto stats = torch::stack({flat.eq(static_cast<int>(Objective::kClm)).sum(),
                             flat.eq(static_cast<int>(Objective::kFim)).sum(), flat.max().to(torch::kLong)})
                   .cpu();
  auto a = stats.accessor<int64_t, 1>();
  GRANITE_CHECK(a[2] <= static_cast<int>(Objective::kFim), "objectives: value ", a[2],
                " is not an objective (0 = ignore, 1 = clm, 2 = fim)");
  c.clm = a[0];
  c.fim = a[1];
  return c;
}

LossCoefficients loss_coefficients(const ObjectiveCounts& global, double alpha) {
  check_alpha(alpha);
  GRANITE_CHECK(global.clm >= 0 && global.fim >= 0, "objective loss: negative global token counts (clm=", global.clm,
                ", fim=", global.fim, ")");
  const double w_clm = alpha, w_fim = 1.0 - alpha;
  const double W = (global.clm > 0 ? w_clm : 0.0) + (global.fim > 0 ? w_fim : 0.0);
  LossCoefficients c;
  if (W > 0) {
    if (global.clm > 0) c.clm = w_clm / (W * static_cast<double>(global.clm));
    if (global.fim > 0) c.fim = w_fim / (W * static_cast<double>(global.fim));
  }
  return c;
}

ObjectiveLoss objective_loss(const torch::Tensor& hidden, const torch::Tensor& lm_weight, const torch::Tensor& lm_bias,
                             const torch::Tensor& targets, const torch::Tensor& objectives,
                             const ObjectiveCounts& global, double alpha, int64_t chunk_rows) {
  check_alpha(alpha);
  GRANITE_CHECK(chunk_rows >= 1, "objective loss: chunk_rows must be >= 1, got ", chunk_rows);
  GRANITE_CHECK(hidden.defined() && lm_weight.defined() && targets.defined() && objectives.defined(),
                "objective loss: hidden, lm_weight, targets and objectives must all be defined");
  GRANITE_CHECK(hidden.dim() == 2 || hidden.dim() == 3, "objective loss: hidden must be (B, T, d) or (N, d), got ",
                hidden.sizes());
  GRANITE_CHECK(hidden.is_floating_point(), "objective loss: hidden must be floating point, got ",
                hidden.scalar_type());
  const int64_t d = hidden.size(-1);
  GRANITE_CHECK(lm_weight.dim() == 2 && lm_weight.size(1) == d, "objective loss: lm_weight must be (V, ", d,
                ") to match hidden ", hidden.sizes(), ", got ", lm_weight.sizes());
  const int64_t V = lm_weight.size(0);
  GRANITE_CHECK(lm_weight.scalar_type() == hidden.scalar_type(), "objective loss: lm_weight dtype ",
                lm_weight.scalar_type(), " differs from hidden dtype ", hidden.scalar_type());
  GRANITE_CHECK(lm_weight.device() == hidden.device(), "objective loss: lm_weight is on ", lm_weight.device(),
                ", hidden on ", hidden.device());
  if (lm_bias.defined()) {
    GRANITE_CHECK(lm_bias.dim() == 1 && lm_bias.size(0) == V, "objective loss: lm_bias must be (", V, "), got ",
                  lm_bias.sizes());
    GRANITE_CHECK(lm_bias.scalar_type() == hidden.scalar_type() && lm_bias.device() == hidden.device(),
                  "objective loss: lm_bias must have hidden's dtype and device (", hidden.scalar_type(), ", ",
                  hidden.device(), "), got ", lm_bias.scalar_type(), ", ", lm_bias.device());
  }
  const auto lead = hidden.sizes().slice(0, hidden.dim() - 1);
  GRANITE_CHECK(targets.sizes() == lead, "objective loss: targets shape ", targets.sizes(),
                " does not match hidden's leading shape ", lead, " (hidden ", hidden.sizes(), ")");
  GRANITE_CHECK(objectives.sizes() == lead, "objective loss: objectives shape ", objectives.sizes(),
                " does not match hidden's leading shape ", lead, " (hidden ", hidden.sizes(), ")");
  GRANITE_CHECK(targets.scalar_type() == torch::kLong, "objective loss: targets must be int64, got ",
                targets.scalar_type());
  GRANITE_CHECK(targets.device() == hidden.device() && objectives.device() == hidden.device(),
                "objective loss: targets and objectives must be on hidden's device (", hidden.device(), ")");

  ObjectiveLoss out;
  out.tokens = count_objectives(objectives);
  GRANITE_CHECK(global.clm >= out.tokens.clm && global.fim >= out.tokens.fim,
                "objective loss: the global token counts (clm=", global.clm, ", fim=", global.fim,
                ") are smaller than this micro-batch's (clm=", out.tokens.clm, ", fim=", out.tokens.fim,
                "): pass the counts of the whole global batch (all micro-batches, all ranks)");
  const auto coefs = loss_coefficients(global, alpha);

  const int64_t N = targets.numel();
  auto h_flat = hidden.reshape({N, d});
  auto obj_flat = objectives.reshape({N});
  auto rows = obj_flat.ne(static_cast<int>(Objective::kIgnore)).nonzero().reshape({-1});  // (K) int64
  auto obj_active = obj_flat.index_select(0, rows);
  auto tgt_active = targets.reshape({N}).index_select(0, rows);

  if (tgt_active.numel() > 0) {
    auto bad = tgt_active.lt(0).logical_or(tgt_active.ge(V));
    if (bad.any().item<bool>()) {
      const int64_t k = bad.nonzero()[0][0].item<int64_t>();
      const int64_t value = tgt_active[k].item<int64_t>();
      const int64_t flat = rows[k].item<int64_t>();
      const auto kind = static_cast<Objective>(obj_active[k].item<int64_t>());
      if (hidden.dim() == 3) {
        const int64_t T = hidden.size(1);
        GRANITE_FAIL("objective loss: target ", value, " of a ", objective_name(kind), " token at [", flat / T, ", ",
                     flat % T, "] is outside [0, ", V, ") (vocabulary size V = ", V, ")");
      }
      GRANITE_FAIL("objective loss: target ", value, " of a ", objective_name(kind), " token at [", flat,
                   "] is outside [0, ", V, ") (vocabulary size V = ", V, ")");
    }
  }

  const auto acc = compute_dtype(hidden.scalar_type());
  // Per-row coefficient by lookup: objective value -> {0, c_clm, c_fim}.
  auto table = torch::tensor({0.0, coefs.clm, coefs.fim}, torch::TensorOptions().dtype(torch::kDouble))
                   .to(hidden.device(), acc);
  auto coef = table.index_select(0, obj_active.to(torch::kLong));
  const bool all_coef_zero = !((out.tokens.clm > 0 && coefs.clm != 0) || (out.tokens.fim > 0 && coefs.fim != 0));

  c10::optional<torch::Tensor> bias;
  if (lm_bias.defined()) bias = lm_bias;
  auto res = FusedLinearCrossEntropy::apply(h_flat, lm_weight, bias, rows, tgt_active, coef, chunk_rows, all_coef_zero);
  out.loss = res[0];
  const auto& ce = res[1];
  if (ce.numel() > 0) {
    auto sums = torch::stack({ce.masked_fill(obj_active.ne(static_cast<int>(Objective::kClm)), 0).sum(),
                              ce.masked_fill(obj_active.ne(static_cast<int>(Objective::kFim)), 0).sum()})
                    .to(torch::kCPU, torch::kDouble);
    out.clm_sum = sums[0].item<double>();
    out.fim_sum = sums[1].item<double>();
  }
  return out;
}

void LossReport::add(const ObjectiveLoss& micro) {
  clm_sum += micro.clm_sum;
  fim_sum += micro.fim_sum;
  tokens += micro.tokens;
}

void LossReport::add(const LossReport& other) {
  clm_sum += other.clm_sum;
  fim_sum += other.fim_sum;
  tokens += other.tokens;
}

double LossReport::clm_loss() const {
  return tokens.clm > 0 ? clm_sum / static_cast<double>(tokens.clm) : std::numeric_limits<double>::quiet_NaN();
}

double LossReport::fim_loss() const {
  return tokens.fim > 0 ? fim_sum / static_cast<double>(tokens.fim) : std::numeric_limits<double>::quiet_NaN();
}

double LossReport::loss(double alpha) const {
  const auto c = loss_coefficients(tokens, alpha);
  return c.clm * clm_sum + c.fim * fim_sum;
}

}  // namespace granite
