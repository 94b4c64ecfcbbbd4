#include "granite/kernels/fused_ops.h"

#include <ATen/core/grad_mode.h>
#include <torch/nn/functional/linear.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "granite/core/check.h"
#include "granite/core/env_switch.h"

#if GRANITE_WITH_FUSED_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "granite/kernels/inference_launchers.h"
#endif

namespace granite::kernels {

namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{env_switch_on("GRANITE_FUSED_KERNELS")};
  return flag;
}

#if GRANITE_WITH_FUSED_KERNELS
launch::Element element_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kBFloat16: return launch::Element::kBF16;
    case torch::kHalf: return launch::Element::kF16;
    case torch::kFloat: return launch::Element::kF32;
    default: GRANITE_FAIL("fused kernels: unsupported dtype ", t.scalar_type());
  }
}

void check_launch(const char* what) {
  const char* err = launch::last_error();
  GRANITE_CHECK(err[0] == '\0', "fused kernel ", what, " failed to launch: ", err);
}

// x (B, T, H, D) with heads and d packed (strides D, 1) and (b, t) rows evenly spaced (a column range of a
// projection's output qualifies): x itself; anything else is copied contiguous. Returns it and its row stride.
std::pair<torch::Tensor, int64_t> head_rows(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  bool packed = x.stride(3) == 1 && (H == 1 || x.stride(2) == D);
  int64_t row = H * D;  // size-1 dimensions' strides say nothing: the other dimension gives the row stride
  if (T > 1) {
    row = x.stride(1);
    packed = packed && (B == 1 || x.stride(0) == T * row);
  } else if (B > 1) {
    row = x.stride(0);
  }
  packed = packed && row >= H * D;
  if (!packed) return {x.contiguous(), H * D};
  return {x, row};
}

void check_same(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  GRANITE_CHECK(a.device() == b.device() && a.scalar_type() == b.scalar_type(), "fused ", what,
                ": tensors differ in device or dtype (", a.device(), " ", a.scalar_type(), " vs ", b.device(), " ",
                b.scalar_type(), ")");
}
#endif

}  // namespace

void set_fused_enabled(bool enabled) { enabled_flag() = enabled; }
bool fused_enabled() { return enabled_flag(); }

bool use_fused(const torch::Tensor& x) {
#if GRANITE_WITH_FUSED_KERNELS
  const auto t = x.scalar_type();
  return enabled_flag() && x.is_cuda() && !at::GradMode::is_enabled() &&
         (t == torch::kBFloat16 || t == torch::kHalf || t == torch::kFloat);
#else
  (void)x;
  return false;
#endif
}

#if GRANITE_WITH_FUSED_KERNELS

namespace {

// rms_norm of x, or of x + delta (then returned as .first) when delta is defined.
std::pair<torch::Tensor, torch::Tensor> launch_rms_norm(const torch::Tensor& x, const torch::Tensor& delta,
                                                        const torch::Tensor& weight, double eps) {
  check_same(x, weight, "rms_norm");
  const int64_t C = x.size(-1);
  GRANITE_CHECK(weight.dim() == 1 && weight.size(0) == C, "fused rms_norm: weight ", weight.sizes(), " for rows of ",
                C);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto input = x.contiguous(), w = weight.contiguous();
  torch::Tensor d, sum;
  if (delta.defined()) {
    check_same(x, delta, "add_rms_norm");
    GRANITE_CHECK(delta.sizes() == x.sizes(), "fused add_rms_norm: x ", x.sizes(), " vs delta ", delta.sizes());
    d = delta.contiguous();
    sum = torch::empty_like(input);
  }
  auto out = torch::empty_like(input);
  launch::rms_norm(element_of(input), input.data_ptr(), d.defined() ? d.data_ptr() : nullptr,
                   sum.defined() ? sum.data_ptr() : nullptr, w.data_ptr(), out.data_ptr(), input.numel() / C, C,
                   float(eps), c10::cuda::getCurrentCUDAStream().stream());
  check_launch("rms_norm");
  return {sum, out};
}

// What rope() and rope_into_cache() share: q, k, cos, sin checked and laid out, q_out allocated; the tensors the
// arguments point into are held until the launch.
struct RopeCall {
  launch::RopeArgs args;
  torch::Tensor q_out;
  std::vector<torch::Tensor> inputs;
};

RopeCall rope_call(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& cos,
                   const torch::Tensor& sin) {
  check_same(q, k, "rope");
  check_same(q, cos, "rope");
  check_same(cos, sin, "rope");
  GRANITE_CHECK(q.dim() == 4 && k.dim() == 4 && q.size(0) == k.size(0) && q.size(1) == k.size(1) &&
                    q.size(3) == k.size(3) && q.size(3) % 2 == 0,
                "fused rope: q ", q.sizes(), " and k ", k.sizes(), " must be (B, T, heads, D) with even D");
  const int64_t B = q.size(0), T = q.size(1), D = q.size(3);
  GRANITE_CHECK(cos.dim() == 3 && cos.sizes() == sin.sizes() && (cos.size(0) == B || cos.size(0) == 1) &&
                    cos.size(1) == T && cos.size(2) == D,
                "fused rope: cos/sin ", cos.sizes(), " do not match q ", q.sizes());
  const auto [qr, q_row] = head_rows(q);
  const auto [kr, k_row] = head_rows(k);
  const auto c = cos.contiguous(), s = sin.contiguous();
  RopeCall call{{}, torch::empty(q.sizes(), q.options()), {qr, kr, c, s}};
  launch::RopeArgs& a = call.args;
  a.q = qr.data_ptr(), a.k = kr.data_ptr(), a.q_row = q_row, a.k_row = k_row;
  a.cos = c.data_ptr(), a.sin = s.data_ptr(), a.cs_batch = c.size(0) == 1 ? 0 : T * D, a.cs_time = D;
  a.q_out = call.q_out.data_ptr();
  a.B = B, a.T = T, a.Hq = q.size(2), a.Hk = k.size(2), a.D = D;
  return call;
}

// a.k_out / a.v_out / a.kv_out: a KV cache's buffers (contiguous (B, Hkv, Tmax, D), like k's device and dtype) at
// device slots (int64 (T)) or, slots undefined, from position first; a.B, a.T, a.Hk, a.D already set.
void set_cache_destination(launch::RopeArgs& a, const torch::Tensor& like, const torch::Tensor& key_buffer,
                           const torch::Tensor& value_buffer, const torch::Tensor& slots, int64_t first,
                           const char* what) {
  check_same(like, key_buffer, what);
  check_same(like, value_buffer, what);
  GRANITE_CHECK(key_buffer.dim() == 4 && key_buffer.sizes() == value_buffer.sizes() && key_buffer.is_contiguous() &&
                    value_buffer.is_contiguous() && key_buffer.size(0) == a.B && key_buffer.size(1) == a.Hk &&
                    key_buffer.size(3) == a.D,
                "fused ", what, ": KV buffers ", key_buffer.sizes(), " / ", value_buffer.sizes(),
                " must be contiguous (B, Hkv, Tmax, D) for B=", a.B, " Hkv=", a.Hk, " D=", a.D);
  const int64_t Tmax = key_buffer.size(2);
  if (slots.defined()) {
    GRANITE_CHECK(slots.scalar_type() == torch::kInt64 && slots.dim() == 1 && slots.size(0) == a.T &&
                      slots.device() == like.device() && slots.is_contiguous(),
                  "fused ", what, ": slots must be int64 (", a.T, ") on ", like.device(), ", got ",
                  slots.scalar_type(), " ", slots.sizes(), " on ", slots.device());
  } else {
    GRANITE_CHECK(first >= 0 && first + a.T <= Tmax, "fused ", what, ": positions [", first, ", ", first + a.T,
                  ") outside the buffers' ", Tmax);
  }
  a.k_out = key_buffer.data_ptr(), a.v_out = value_buffer.data_ptr();
  a.kv_out.batch = a.Hk * Tmax * a.D, a.kv_out.head = Tmax * a.D, a.kv_out.time = a.D, a.kv_out.first = first;
  a.kv_out.slots = slots.defined() ? slots.data_ptr<int64_t>() : nullptr;
}

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return launch_rms_norm(x, torch::Tensor(), weight, eps).second;
}

std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& delta,
                                                     const torch::Tensor& weight, double eps) {
  return launch_rms_norm(x, delta, weight, eps);
}

std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& cos,
                                             const torch::Tensor& sin) {
  const c10::cuda::CUDAGuard guard(q.device());
  auto call = rope_call(q, k, cos, sin);
  launch::RopeArgs& a = call.args;
  auto k_out = torch::empty(k.sizes(), k.options());  // contiguous (B, T, Hk, D)
  a.k_out = k_out.data_ptr();
  a.kv_out.batch = a.T * a.Hk * a.D, a.kv_out.time = a.Hk * a.D, a.kv_out.head = a.D;
  launch::rope(element_of(q), a, c10::cuda::getCurrentCUDAStream().stream());
  check_launch("rope");
  return {call.q_out, k_out};
}

torch::Tensor rope_into_cache(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& key_buffer,
                              const torch::Tensor& value_buffer, const torch::Tensor& slots, int64_t first) {
  const c10::cuda::CUDAGuard guard(q.device());
  auto call = rope_call(q, k, cos, sin);
  launch::RopeArgs& a = call.args;
  check_same(k, v, "rope_into_cache");
  GRANITE_CHECK(v.sizes() == k.sizes(), "fused rope_into_cache: v ", v.sizes(), " vs k ", k.sizes());
  set_cache_destination(a, k, key_buffer, value_buffer, slots, first, "rope_into_cache");
  const auto [vr, v_row] = head_rows(v);
  a.v = vr.data_ptr(), a.v_row = v_row;
  launch::rope(element_of(q), a, c10::cuda::getCurrentCUDAStream().stream());
  check_launch("rope_into_cache");
  return call.q_out;
}

torch::Tensor silu_mul(const torch::Tensor& gate, const torch::Tensor& up) {
  check_same(gate, up, "silu_mul");
  GRANITE_CHECK(gate.sizes() == up.sizes(), "fused silu_mul: gate ", gate.sizes(), " vs up ", up.sizes());
  const c10::cuda::CUDAGuard guard(gate.device());
  // As (rows, n) views when they are evenly spaced rows of n packed elements with one row stride (the two halves of
  // a packed gate/up projection are); otherwise contiguous copies.
  const int64_t n = gate.size(-1);
  auto g = gate.reshape({-1, n}), u = up.reshape({-1, n});
  if (g.stride(1) != 1 || u.stride(1) != 1 || (g.size(0) > 1 && g.stride(0) != u.stride(0))) {
    g = g.contiguous();
    u = u.contiguous();
  }
  const int64_t in_row = g.size(0) > 1 ? g.stride(0) : n;
  auto out = torch::empty(gate.sizes(), gate.options());
  launch::silu_mul(element_of(g), g.data_ptr(), u.data_ptr(), out.data_ptr(), g.size(0), n, in_row,
                   c10::cuda::getCurrentCUDAStream().stream());
  check_launch("silu_mul");
  return out;
}

namespace {

// The GEMV kernel's preconditions: at most kMaxGemvRows rows, contiguous and 16-byte aligned, K a whole number of
// 16-byte loads, one device and dtype.
bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!x.is_cuda() || weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1)) return false;
  const int64_t K = weight.size(1), N = weight.size(0), elems_per_16_bytes = 16 / int64_t(x.element_size());
  const int64_t rows = K > 0 ? x.numel() / K : 0;
  auto aligned = [](const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  const auto t = x.scalar_type();
  return (t == torch::kBFloat16 || t == torch::kHalf || t == torch::kFloat) && rows >= 1 &&
         rows <= launch::kMaxGemvRows && K % elems_per_16_bytes == 0 && x.is_contiguous() &&
         weight.is_contiguous() && weight.device() == x.device() && weight.scalar_type() == t && aligned(x) &&
         aligned(weight) &&
         (!bias.defined() || (bias.dim() == 1 && bias.size(0) == N && bias.is_contiguous() &&
                              bias.scalar_type() == t && bias.device() == x.device()));
}

launch::GemvLayout to_launch(GemvLayout l) { return {l.rows_per_warp, l.split}; }

// gemv's launch, its preconditions (gemv_applies) already established; swiglu: weight (2I, K) -> (.., I).
torch::Tensor launch_gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, bool swiglu,
                          GemvLayout layout) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t K = weight.size(1), N = swiglu ? weight.size(0) / 2 : weight.size(0);
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto out = torch::empty(sizes, x.options());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  const void* b = bias.defined() ? bias.data_ptr() : nullptr;
  if (swiglu) {
    launch::gemv_swiglu(element_of(x), x.data_ptr(), weight.data_ptr(), b, out.data_ptr(), x.numel() / K, N, K, stream,
                        to_launch(layout));
  } else {
    launch::gemv(element_of(x), x.data_ptr(), weight.data_ptr(), b, out.data_ptr(), x.numel() / K, N, K, stream,
                 to_launch(layout));
  }
  check_launch(swiglu ? "gemv_swiglu" : "gemv");
  return out;
}

void check_gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, bool paired,
                GemvLayout layout, const char* what) {
  GRANITE_CHECK(gemv_applies(x, weight, bias), "fused ", what, ": x ", x.sizes(), " ", x.scalar_type(), " and weight ",
                weight.sizes(), " ", weight.scalar_type(), " must be contiguous, 16-byte aligned, 1..",
                launch::kMaxGemvRows, " rows of a multiple of 16 bytes, on one CUDA device");
  GRANITE_CHECK(!paired || weight.size(0) % 2 == 0, "fused ", what, ": the packed weight ", weight.sizes(),
                " has an odd number of rows");
  const int64_t rows = x.numel() / weight.size(1);
  GRANITE_CHECK(layout.rows_per_warp == 0 || launch::gemv_layout_built(to_launch(layout), rows, paired), "fused ",
                what, ": no kernel for layout {", layout.rows_per_warp, ", ", layout.split, "} at ", rows, " rows");
}

bool gemv_wins(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t K = x.dim() >= 1 ? x.size(-1) : 0;
  const bool few_rows = K > 0 && x.numel() / K <= kGemvRowsBeatingCublas;
  return few_rows && use_fused(x) && gemv_applies(x, weight, bias);
}

}  // namespace

torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, GemvLayout layout) {
  check_gemv(x, weight, bias, false, layout, "gemv");
  return launch_gemv(x, weight, bias, false, layout);
}

torch::Tensor gemv_swiglu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          GemvLayout layout) {
  check_gemv(x, weight, bias, true, layout, "gemv_swiglu");
  return launch_gemv(x, weight, bias, true, layout);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (gemv_wins(x, weight, bias)) return launch_gemv(x, weight, bias, false, {});
  return torch::nn::functional::linear(x, weight, bias);
}

torch::Tensor linear_swiglu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (weight.dim() != 2 || weight.size(0) % 2 != 0 || !gemv_wins(x, weight, bias)) return {};
  return launch_gemv(x, weight, bias, true, {});
}

torch::Tensor gemv_rope_into_cache(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   int64_t Hq, int64_t Hk, const torch::Tensor& cos, const torch::Tensor& sin,
                                   const torch::Tensor& key_buffer, const torch::Tensor& value_buffer,
                                   const torch::Tensor& slots, int64_t first, GemvLayout layout) {
  GRANITE_CHECK(x.dim() == 3 && x.size(1) == 1, "fused gemv_rope_into_cache: x ", x.sizes(),
                " must be (B, 1, C): one new token per sequence");
  check_gemv(x, weight, bias, true, layout, "gemv_rope_into_cache");
  const int64_t B = x.size(0), heads = Hq + 2 * Hk;
  GRANITE_CHECK(Hq > 0 && Hk > 0 && weight.size(0) % heads == 0 && (weight.size(0) / heads) % 2 == 0,
                "fused gemv_rope_into_cache: weight ", weight.sizes(), " is not (Hq + 2 Hk) heads of an even D for Hq=",
                Hq, " Hk=", Hk);
  const int64_t D = weight.size(0) / heads;
  check_same(x, cos, "gemv_rope_into_cache");
  check_same(cos, sin, "gemv_rope_into_cache");
  GRANITE_CHECK(cos.dim() == 3 && cos.sizes() == sin.sizes() && (cos.size(0) == B || cos.size(0) == 1) &&
                    cos.size(1) == 1 && cos.size(2) == D,
                "fused gemv_rope_into_cache: cos/sin ", cos.sizes(), " are not (B or 1, 1, ", D, ")");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto c = cos.contiguous(), s = sin.contiguous();
  auto q = torch::empty({B, 1, Hq, D}, x.options());
  launch::RopeArgs a;
  a.cos = c.data_ptr(), a.sin = s.data_ptr(), a.cs_batch = c.size(0) == 1 ? 0 : D, a.cs_time = D;
  a.q_out = q.data_ptr();
  a.B = B, a.T = 1, a.Hq = Hq, a.Hk = Hk, a.D = D;
  set_cache_destination(a, x, key_buffer, value_buffer, slots, first, "gemv_rope_into_cache");
  launch::gemv_rope(element_of(x), x.data_ptr(), weight.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                    weight.size(1), a, c10::cuda::getCurrentCUDAStream().stream(), to_launch(layout));
  check_launch("gemv_rope_into_cache");
  return q;
}

torch::Tensor linear_rope_into_cache(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                     int64_t Hq, int64_t Hk, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& key_buffer, const torch::Tensor& value_buffer,
                                     const torch::Tensor& slots, int64_t first) {
  if (x.dim() != 3 || x.size(1) != 1 || !gemv_wins(x, weight, bias)) return {};
  return gemv_rope_into_cache(x, weight, bias, Hq, Hk, cos, sin, key_buffer, value_buffer, slots, first, {});
}

void set_overlapped_launches(bool on) { launch::set_overlapped_launches(on); }
bool overlapped_launches() { return launch::overlapped_launches(); }

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                               const torch::Tensor& mask) {
  if (!use_fused(q) || q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || q.size(2) != 1) return {};
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), Tk = k.size(2);
  const int64_t V = 16 / int64_t(q.element_size());
  auto aligned = [](const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  const bool layout = k.sizes() == v.sizes() && k.strides() == v.strides() && k.size(0) == B && k.size(3) == D &&
                      k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type() &&
                      k.device() == q.device() && v.device() == q.device() && q.stride(3) == 1 &&
                      k.stride(3) == 1 && k.stride(0) % V == 0 && k.stride(1) % V == 0 && k.stride(2) % V == 0 &&
                      aligned(k) && aligned(v);
  const bool mask_ok =
      !mask.defined() || ((mask.scalar_type() == q.scalar_type() || mask.scalar_type() == torch::kBool) &&
                          mask.device() == q.device() && mask.dim() == 4 &&
                          (mask.size(0) == B || mask.size(0) == 1) && mask.size(1) == 1 && mask.size(2) == 1 &&
                          mask.size(3) == Tk);
  if (!layout || !mask_ok) return {};
  const c10::cuda::CUDAGuard guard(q.device());
  auto out = torch::empty({B, 1, H, D}, q.options());
  launch::DecodeAttentionArgs a;
  a.q = q.data_ptr(), a.k = k.data_ptr(), a.v = v.data_ptr(), a.out = out.data_ptr();
  a.mask = mask.defined() ? mask.data_ptr() : nullptr;
  a.B = B, a.H = H, a.Hkv = Hkv, a.Tk = Tk, a.D = D;
  a.q_b = q.stride(0), a.q_h = q.stride(1);
  a.kv_b = k.stride(0), a.kv_h = k.stride(1), a.kv_t = k.stride(2);
  if (mask.defined()) a.mask_b = mask.size(0) == 1 ? 0 : mask.stride(0), a.mask_t = mask.stride(3);
  a.scale = float(scale);
  a.mask_is_bool = mask.defined() && mask.scalar_type() == torch::kBool;
  if (!launch::decode_attention(element_of(q), a, c10::cuda::getCurrentCUDAStream().stream())) return {};
  check_launch("decode_attention");
  return out.transpose(1, 2);  // (B, H, 1, D), as SDPA returns it
}

#else  // No kernels built (CPU LibTorch, no CUDA compiler): use_fused() is false, so these are never reached through the models.

torch::Tensor rms_norm(const torch::Tensor&, const torch::Tensor&, double) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                                     double) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                             const torch::Tensor&) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor rope_into_cache(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                              const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                              int64_t) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor silu_mul(const torch::Tensor&, const torch::Tensor&) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor decode_attention(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double,
                               const torch::Tensor&) {
  return {};
}
torch::Tensor gemv(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, GemvLayout) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor gemv_swiglu(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, GemvLayout) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::nn::functional::linear(x, weight, bias);
}
torch::Tensor linear_swiglu(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) { return {}; }
torch::Tensor gemv_rope_into_cache(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t, int64_t,
                                   const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                   const torch::Tensor&, const torch::Tensor&, int64_t, GemvLayout) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor linear_rope_into_cache(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, int64_t,
                                     int64_t, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                     const torch::Tensor&, const torch::Tensor&, int64_t) {
  return {};
}
void set_overlapped_launches(bool) {}
bool overlapped_launches() { return false; }

#endif

}  // namespace granite::kernels
