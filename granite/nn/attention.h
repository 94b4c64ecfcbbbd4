#pragma once
// The attention kernel both architectures share: causal softmax(q k^T * scale) v, with the queries being the LAST Tq
// positions of the Tk keys (so a decode step, Tq = 1, sees every cached key, and a chunked prefill is bottom-right
// causal). GQA/MQA: KV head j serves the contiguous query heads [j*rep, (j+1)*rep) (HF repeat_kv).
//
// Two paths: SDPA (flash / memory-efficient kernels; LibTorch >= 2.1) and explicit math with an fp32 softmax
// (every version; the reference the SDPA path is tested against on the GPU).
#include <torch/types.h>

namespace granite {

enum class AttentionBackend {
  Auto,  // SDPA where compiled in, else Math
  Math,
  SDPA,
};

// q (B, H, Tq, D); k, v (B, Hkv, Tk, D) with Tk >= Tq. Returns (B, H, Tq, D) in q's dtype.
// dropout_p applies to the attention probabilities (pass 0 outside training).
// allowed: undefined (the causal rule above), or a bool mask broadcastable to (B, H, Tq, Tk), true where a query may
// attend a key, used INSTEAD of the causal rule (it must be causal itself, e.g. granite::document_causal_mask for
// packed documents). Every query must be allowed at least one key. Or the same mask in additive form, in q's dtype:
// 0 where allowed, -inf where not (what SDPA makes of a bool mask in every call: a caller attending many layers
// under one mask converts it once, granite::additive_mask).
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               double dropout_p = 0.0, AttentionBackend backend = AttentionBackend::Auto,
                               const torch::Tensor& allowed = {});

// A bool mask (true = may attend) as the additive mask causal_attention also takes: 0 / -inf in `dtype`.
torch::Tensor additive_mask(const torch::Tensor& allowed, torch::ScalarType dtype);

}  // namespace granite
