#include "granite/kernels/fused_ops.h"

#include <ATen/core/grad_mode.h>
#include <torch/nn/functional/linear.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "granite/core/check.h"

#if GRANITE_WITH_FUSED_KERNELS
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "granite/kernels/inference_launchers.h"
#endif

namespace granite::kernels {

namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> flag{[] {
    const char* env = std::getenv("GRANITE_FUSED_KERNELS");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }()};
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

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  check_same(x, weight, "rms_norm");
  const int64_t C = x.size(-1);
  GRANITE_CHECK(weight.dim() == 1 && weight.size(0) == C, "fused rms_norm: weight ", weight.sizes(), " for rows of ",
                C);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto input = x.contiguous(), w = weight.contiguous();
  auto out = torch::empty_like(input);
  launch::rms_norm(element_of(input), input.data_ptr(), w.data_ptr(), out.data_ptr(), input.numel() / C, C,
                   float(eps), c10::cuda::getCurrentCUDAStream().stream());
  check_launch("rms_norm");
  return out;
}

std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& cos,
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
  const c10::cuda::CUDAGuard guard(q.device());
  const auto [qr, q_row] = head_rows(q);
  const auto [kr, k_row] = head_rows(k);
  const auto c = cos.contiguous(), s = sin.contiguous();
  auto q_out = torch::empty(q.sizes(), q.options()), k_out = torch::empty(k.sizes(), k.options());
  const int64_t cs_batch = c.size(0) == 1 ? 0 : T * D;
  launch::rope(element_of(qr), qr.data_ptr(), kr.data_ptr(), q_out.data_ptr(), k_out.data_ptr(), c.data_ptr(),
               s.data_ptr(), B, T, q.size(2), k.size(2), D, q_row, k_row, cs_batch, D,
               c10::cuda::getCurrentCUDAStream().stream());
  check_launch("rope");
  return {q_out, k_out};
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

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool applies = [&] {
    if (!use_fused(x) || weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1)) return false;
    const int64_t K = weight.size(1), N = weight.size(0), elems_per_16_bytes = 16 / int64_t(x.element_size());
    const int64_t rows = K > 0 ? x.numel() / K : 0;
    auto aligned = [](const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
    return rows >= 1 && rows <= launch::kMaxGemvRows && K % elems_per_16_bytes == 0 && x.is_contiguous() &&
           weight.is_contiguous() && weight.device() == x.device() && weight.scalar_type() == x.scalar_type() &&
           aligned(x) && aligned(weight) &&
           (!bias.defined() || (bias.dim() == 1 && bias.size(0) == N && bias.is_contiguous() &&
                                bias.scalar_type() == x.scalar_type() && bias.device() == x.device()));
  }();
  if (!applies) return torch::nn::functional::linear(x, weight, bias);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t K = weight.size(1), N = weight.size(0);
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  auto out = torch::empty(sizes, x.options());
  launch::gemv(element_of(x), x.data_ptr(), weight.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
               out.data_ptr(), x.numel() / K, N, K, c10::cuda::getCurrentCUDAStream().stream());
  check_launch("gemv");
  return out;
}

#else  // No kernels built (CPU LibTorch, no CUDA compiler): use_fused() is false, so these are never reached through the models.

torch::Tensor rms_norm(const torch::Tensor&, const torch::Tensor&, double) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
std::pair<torch::Tensor, torch::Tensor> rope(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                             const torch::Tensor&) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor silu_mul(const torch::Tensor&, const torch::Tensor&) {
  GRANITE_FAIL("granite was built without its fused CUDA kernels");
}
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return torch::nn::functional::linear(x, weight, bias);
}

#endif

}  // namespace granite::kernels
