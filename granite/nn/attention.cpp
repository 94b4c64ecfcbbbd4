#include "granite/nn/attention.h"

#include <ATen/ATen.h>

#include "granite/core/check.h"
#include "granite/core/compat.h"
#include "granite/kernels/fused_ops.h"

namespace granite {

namespace {

// (B, Hkv, T, D) -> (B, Hkv * rep, T, D), each KV head repeated for `rep` consecutive query heads. expand + reshape
// rather than repeat_interleave, whose output size is read back from the device (no sync: CUDA-graph safe).
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t rep) {
  if (rep == 1) return x;
  const int64_t B = x.size(0), Hkv = x.size(1), T = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, Hkv, rep, T, D}).reshape({B, Hkv * rep, T, D});
}

// true where key j is visible to query i, queries being the last Tq of Tk positions: j <= i + (Tk - Tq).
torch::Tensor causal_mask(int64_t Tq, int64_t Tk, torch::Device device) {
  return torch::ones({Tq, Tk}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(Tk - Tq);
}

torch::Tensor math_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                             double dropout_p, const torch::Tensor& allowed) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // (B, H, Tq, Tk), q's dtype (as HF eager)
  auto probs = scores.to(torch::kFloat32);
  if (allowed.defined() && allowed.scalar_type() == torch::kBool) {
    probs = probs.masked_fill(allowed.logical_not(), -INFINITY);
  } else if (allowed.defined()) {
    probs = probs + allowed;  // 0 / -inf: the same scores as masked_fill
  } else if (Tq > 1) {
    probs = probs.masked_fill(causal_mask(Tq, Tk, q.device()).logical_not(), -INFINITY);
  }
  probs = torch::softmax(probs, -1).to(q.scalar_type());
  if (dropout_p > 0) probs = torch::dropout(probs, dropout_p, /*train=*/true);
  return torch::matmul(probs, v);
}

#if GRANITE_HAS_SDPA
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                             double dropout_p, const torch::Tensor& allowed) {
  const int64_t Tq = q.size(2), Tk = k.size(2);
  if (allowed.defined()) return at::scaled_dot_product_attention(q, k, v, allowed, dropout_p, false, scale);
  // Square: the kernels' own causal mask (flash-eligible). One query: no mask at all. Otherwise an explicit
  // bottom-right mask, since SDPA's is_causal aligns top-left when Tq != Tk.
  const bool square = Tq == Tk;
  c10::optional<torch::Tensor> mask;
  if (!square && Tq > 1) mask = causal_mask(Tq, Tk, q.device());
  return at::scaled_dot_product_attention(q, k, v, mask, dropout_p, /*is_causal=*/square && Tq > 1, scale);
}
#endif

}  // namespace

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               double dropout_p, AttentionBackend backend, const torch::Tensor& allowed) {
  GRANITE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects (B, heads, T, D) tensors, got q ",
                q.sizes(), " k ", k.sizes(), " v ", v.sizes());
  const int64_t H = q.size(1), Hkv = k.size(1);
  GRANITE_CHECK(H % Hkv == 0, "query heads (", H, ") must be a multiple of key/value heads (", Hkv, ")");
  GRANITE_CHECK(k.size(2) >= q.size(2), "attention has more queries (", q.size(2), ") than keys (", k.size(2), ")");
  if (allowed.defined()) {
    GRANITE_CHECK((allowed.scalar_type() == torch::kBool || allowed.scalar_type() == q.scalar_type()) &&
                      allowed.dim() == 4 && allowed.size(-2) == q.size(2) && allowed.size(-1) == k.size(2),
                  "attention mask must be bool, or additive in q's dtype (", q.scalar_type(), "), (B, 1, Tq, Tk) = (.., ",
                  q.size(2), ", ", k.size(2), "), got ", allowed.scalar_type(), " ", allowed.sizes());
  }
  // A decode step (one query, no dropout) with the fused kernels: one kernel, GQA heads read in place.
  if (q.size(2) == 1 && dropout_p == 0 && backend == AttentionBackend::Auto) {
    if (auto y = kernels::decode_attention(q, k, v, scale, allowed); y.defined()) return y;
  }
  auto k_full = repeat_kv(k, H / Hkv), v_full = repeat_kv(v, H / Hkv);
  if (backend == AttentionBackend::Auto) backend = compat::has_sdpa ? AttentionBackend::SDPA : AttentionBackend::Math;
#if GRANITE_HAS_SDPA
  if (backend == AttentionBackend::SDPA) return sdpa_attention(q, k_full, v_full, scale, dropout_p, allowed);
#else
  GRANITE_CHECK(backend != AttentionBackend::SDPA, "SDPA attention needs LibTorch >= 2.1 (this build: ",
                compat::torch_version(), ")");
#endif
  return math_attention(q, k_full, v_full, scale, dropout_p, allowed);
}

torch::Tensor additive_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  GRANITE_CHECK(allowed.scalar_type() == torch::kBool, "additive_mask: expects a bool mask, got ",
                allowed.scalar_type());
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype)).masked_fill(allowed.logical_not(), -INFINITY);
}

}  // namespace granite
