#pragma once
// The training loss: alpha-weighted CLM/FIM cross-entropy, fused with the LM head and chunked over tokens.
//
// Shape. Every target token carries an objective (granite/data/objective.h): kIgnore (0), kClm (1) or kFim (2).
//   L = alpha * L_CLM + (1 - alpha) * L_FIM,
// each term being the mean token cross-entropy over ITS OWN tokens of the whole GLOBAL batch (every micro-batch of
// gradient accumulation on every data-parallel rank). One call handles one micro-batch and returns its contribution
//   sum over its tokens of  c_o(token) * CE(token),
// so summing the returned losses (and hence the gradients) over all micro-batches and ranks gives exactly the loss
// (gradient) of the one big batch. The caller counts the objectives of the global batch first (count_objectives on
// every micro-batch, summed, then all-reduced across ranks) and passes those counts to every call.
//
// Empty objectives. present = the objectives whose GLOBAL token count is > 0; w_clm = alpha, w_fim = 1 - alpha;
// W = the sum of w over the present objectives. The coefficient of a token of objective o is
//   c_o = w_o / (W * global_count_o)   if o is present and W > 0,   else 0.
// So with both objectives present L = alpha * L_CLM + (1 - alpha) * L_FIM; with only CLM tokens L = L_CLM whatever
// alpha (pure-CLM data with alpha 0.5 does not silently halve the gradient), likewise with only FIM tokens; when
// W == 0 (alpha = 1 and only FIM tokens, alpha = 0 and only CLM tokens, or no tokens at all) the loss is exactly 0
// with all-zero gradients -- still a differentiable scalar connected to the inputs, so backward() works.
//
// Numerics follow Hugging Face transformers (loss_utils.py: ForCausalLMLoss / fixed_cross_entropy): the logits are
// computed in the model dtype and upcast to fp32 before the softmax; targets of ignored tokens are never read (-100,
// HF's ignore_index, is the usual filler); the reduction is a sum divided by the token count of the whole batch
// (HF's num_items_in_batch), here per objective. fp64 inputs keep fp64 throughout (used by the tests).
//
// Memory. The LM head and the cross-entropy are fused (the idea of Liger-Kernel's FusedLinearCrossEntropy and Apple's
// Cut Cross-Entropy, written here with plain ATen ops): only the non-ignored rows are gathered, they are processed
// `chunk_rows` at a time, and no logits are kept for backward -- backward recomputes each chunk's logits from the
// saved hidden rows and log-sum-exps. Peak extra memory is about chunk_rows x V x (4 + element size) bytes (e.g.
// 2048 x 49152 x 6 = 600 MB for bf16 Granite Code) instead of B x T x V fp32 logits. Backward, per chunk:
// grad_logits = (softmax - onehot(target)) * coef * grad_output in fp32, cast to the model dtype (as the backward of
// HF's .float() does) for grad_hidden = grad_logits @ W and grad_W += grad_logits^T @ h; grad_W and grad_b accumulate
// over chunks in fp32 and are cast to the parameter dtype at the end. Ignored rows get exact zeros. First-order only
// (no double backward).
//
// Selecting the active rows, the counts, the target-range check and the logging sums read values back from the
// device: a few synchronisations per call.
#include <torch/types.h>

#include <cstdint>

#include "granite/data/objective.h"  // Objective, objective_name

namespace granite {

// Token counts per objective: of the whole global batch, or of one micro-batch.
struct ObjectiveCounts {
  int64_t clm = 0;
  int64_t fim = 0;

  int64_t total() const { return clm + fim; }
  ObjectiveCounts& operator+=(const ObjectiveCounts& o) {
    clm += o.clm;
    fim += o.fim;
    return *this;
  }
};
inline ObjectiveCounts operator+(ObjectiveCounts a, const ObjectiveCounts& b) { return a += b; }
inline bool operator==(const ObjectiveCounts& a, const ObjectiveCounts& b) { return a.clm == b.clm && a.fim == b.fim; }

// Counts the CLM and FIM entries of a uint8 objectives tensor of any shape (any device). Throws on a value that is
// not an Objective (> 2) or on a non-uint8 tensor.
ObjectiveCounts count_objectives(const torch::Tensor& objectives);

// The per-token coefficients of the rule above. alpha must be in [0, 1]; counts must be >= 0.
struct LossCoefficients {
  double clm = 0;
  double fim = 0;
};
LossCoefficients loss_coefficients(const ObjectiveCounts& global, double alpha);

struct ObjectiveLoss {
  // This micro-batch's contribution to the global loss: a differentiable scalar, fp32 (fp64 for fp64 inputs).
  torch::Tensor loss;
  // Sums of the token cross-entropies of each objective in this micro-batch (unweighted, detached; for logging).
  double clm_sum = 0;
  double fim_sum = 0;
  ObjectiveCounts tokens;  // this micro-batch's token counts
};

// hidden:     (B, T, d) or (N, d); fp32, bf16, fp16 or fp64 (the final hidden states, after the last norm).
// lm_weight:  (V, d), hidden's dtype and device (the LM head, or the tied embedding).
// lm_bias:    undefined, or (V) in hidden's dtype.
// targets:    int64, hidden's leading shape (B, T) or (N). Targets of ignored tokens may be anything (e.g. -100);
//             those of CLM/FIM tokens must lie in [0, V).
// objectives: uint8 (Objective values), same shape as targets.
// global:     the token counts of the whole global batch (>= this micro-batch's).
// alpha:      the CLM weight, in [0, 1].
// chunk_rows: tokens per chunk of logits (>= 1).
ObjectiveLoss objective_loss(const torch::Tensor& hidden, const torch::Tensor& lm_weight, const torch::Tensor& lm_bias,
                             const torch::Tensor& targets, const torch::Tensor& objectives,
                             const ObjectiveCounts& global, double alpha, int64_t chunk_rows = 2048);

// Logging across micro-batches (and ranks: all-reduce the four numbers, or add() the reports). Once every
// micro-batch of the global batch has been added, tokens are the global counts and loss(alpha) equals the sum of the
// returned losses (up to rounding).
struct LossReport {
  double clm_sum = 0;
  double fim_sum = 0;
  ObjectiveCounts tokens;

  void add(const ObjectiveLoss& micro);
  void add(const LossReport& other);
  // Mean cross-entropy over the objective's tokens; NaN when it has none.
  double clm_loss() const;
  double fim_loss() const;
  // The combined loss under the empty-objective rule above (0 when W == 0, never NaN).
  double loss(double alpha) const;
};

}  // namespace granite
