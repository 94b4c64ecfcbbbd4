// The optimizer and the precision policy on the GPU (tag [cuda]): PyTorch's fused AdamW kernel (LibTorch >= 2.0)
// against our elementwise AdamW on the same flat buffers, mixed-precision (bf16) training against fp32 training,
// and the allocator's peak memory as granite-pretrain reports it.
#include <catch2/catch.hpp>

#include <torch/cuda.h>

#include "granite/core/compat.h"
#include "granite/core/device_memory.h"
#include "granite/models/factory.h"
#include "granite/train/adamw.h"
#include "granite/train/train_step.h"
#include "support/real_code.h"
#include "support/tensor_match.h"
#include "support/train_runs.h"

namespace {

granite::CausalLM tiny_cuda_model(uint64_t seed) {
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  torch::manual_seed(seed);
  auto model = granite::make_model(cfg);
  model->to(torch::kCUDA);
  return model;
}

}  // namespace

TEST_CASE("fused AdamW on CUDA equals the elementwise AdamW", "[cuda][train][adamw]") {
  REQUIRE(torch::cuda::is_available());
  granite::OptimizerConfig fused_config, plain_config;
  plain_config.fused = false;
  auto a = tiny_cuda_model(1), b = tiny_cuda_model(1);
  granite::ParameterBuffers pa(*a, fused_config, torch::kFloat), pb(*b, plain_config, torch::kFloat);
  granite::AdamW fused(pa, fused_config), plain(pb, plain_config);
  CHECK(fused.fused() == bool(GRANITE_HAS_FUSED_ADAMW));
  CHECK_FALSE(plain.fused());
  torch::manual_seed(2);
  for (int step = 0; step < 6; ++step) {
    for (size_t g = 0; g < pa.groups().size(); ++g) {
      const auto grad = torch::randn_like(pa.groups()[g].grad) * (step + 1);
      pa.groups()[g].grad.copy_(grad);
      pb.groups()[g].grad.copy_(grad);
    }
    fused.step(1e-2);
    plain.step(1e-2);
  }
  for (size_t g = 0; g < pa.groups().size(); ++g) REQUIRE_CLOSE(pa.groups()[g].master, pb.groups()[g].master, 1e-6);
  const auto sa = fused.state_tensors(), sb = plain.state_tensors();
  for (size_t i = 0; i < sa.size(); ++i) {  // relative to each tensor's scale (the second moments reach ~40)
    INFO(sa[i].first);
    const double scale = 1.0 + sb[i].second.abs().max().item<double>();
    REQUIRE_CLOSE(sa[i].second / scale, sb[i].second / scale, 1e-6);
  }
}

TEST_CASE("bf16 mixed-precision training on CUDA tracks fp32, peak memory is reported", "[cuda][train][adamw]") {
  REQUIRE(torch::cuda::is_available());
  const auto data = granite::test::code_batches(12, 4);
  auto fp32 = tiny_cuda_model(3), mixed = tiny_cuda_model(3);
  granite::test::check_mixed_tracks_fp32(granite::test::train_losses(*fp32, data, torch::kFloat),
                                         granite::test::train_losses(*mixed, data, torch::kBFloat16));
  const torch::Device cuda(torch::kCUDA);
  granite::reset_peak_allocated_bytes(cuda);
  const auto before = granite::peak_allocated_bytes(cuda);
  REQUIRE(before.has_value());
  const auto big = torch::empty({64 << 20}, torch::TensorOptions().device(cuda).dtype(torch::kFloat));  // 256 MiB
  CHECK(*granite::peak_allocated_bytes(cuda) >= *before + (int64_t(256) << 20));
  CHECK_FALSE(granite::peak_allocated_bytes(torch::Device(torch::kCPU)).has_value());
}
