// GPU checks (tag [cuda]; registered only on CUDA builds, run by scripts/gpu.sh): the bf16 forward against the
// transformers fp32 reference with HF's own bf16 error as the yardstick, fp32 on the GPU, KV-cached decoding, and the
// SDPA kernels against the math fallback.
#include <catch2/catch.hpp>

#include <torch/cuda.h>

#include "granite/core/compat.h"
#include "granite/generate/generator.h"
#include "granite/generate/static_decode.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "granite/nn/attention.h"
#include "support/tensor_match.h"

using granite::test::source_path;

namespace {
const char* kFixtures[] = {"llama_mha_bias_tied", "llama_gqa_bias_untied_theta1e7", "llama_mqa_nobias_headdim",
                           "bigcode_mqa", "bigcode_mha"};
std::string fixture_dir(const std::string& name) { return source_path("tests/fixtures/hf/" + name); }
granite::CausalLM load_on_gpu(const std::string& name, torch::ScalarType dtype) {
  granite::LoadOptions opts;
  opts.device = torch::kCUDA;
  opts.dtype = dtype;
  return granite::load_pretrained(fixture_dir(name), opts);
}
}  // namespace

TEST_CASE("bf16 logits on the GPU are as close to the fp32 reference as transformers' own bf16", "[cuda][parity]") {
  REQUIRE(torch::cuda::is_available());
  torch::NoGradGuard no_grad;
  for (const char* name : kFixtures) {
    INFO(name);
    auto exp = granite::load_safetensors(fixture_dir(name) + "/expected.safetensors");
    auto model = load_on_gpu(name, torch::kBFloat16);
    auto ours = model->forward(exp.at("input_ids").cuda()).to(torch::kCPU, torch::kFloat32);
    const double hf_err = granite::test::max_abs_diff(exp.at("logits_bf16_cuda"), exp.at("logits")).max_abs;
    const double our_err = granite::test::max_abs_diff(ours, exp.at("logits")).max_abs;
    INFO("HF bf16 max err " << hf_err << ", ours " << our_err);
    REQUIRE(our_err <= 2.0 * hf_err + 1e-2);
    // and the two bf16 implementations agree with each other to bf16 rounding on these O(1) logits
    REQUIRE(granite::test::max_abs_diff(ours, exp.at("logits_bf16_cuda")).max_abs <= 2.0 * hf_err + 1e-2);
  }
}

TEST_CASE("fp32 logits on the GPU equal transformers", "[cuda][parity]") {
  torch::NoGradGuard no_grad;
  for (const char* name : kFixtures) {
    INFO(name);
    auto exp = granite::load_safetensors(fixture_dir(name) + "/expected.safetensors");
    auto model = load_on_gpu(name, torch::kFloat32);
    REQUIRE_CLOSE(model->forward(exp.at("input_ids").cuda()).cpu(), exp.at("logits"), 1e-3);
  }
}

TEST_CASE("greedy KV-cached generation on the GPU (bf16) equals argmax of the full forward", "[cuda][generate]") {
  torch::NoGradGuard no_grad;
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    auto model = load_on_gpu(name, torch::kBFloat16);
    std::vector<int64_t> seq{7, 3, 99, 14};
    granite::GenerationOptions g;
    g.max_new_tokens = 12;
    auto out = granite::generate(*model, seq, g);
    for (int64_t id : out) {  // each generated token is the argmax of a fresh full forward over the prefix
      auto ids = torch::tensor(seq, torch::kInt64).unsqueeze(0).cuda();
      REQUIRE(model->forward(ids).select(1, int64_t(seq.size()) - 1).argmax(-1).item<int64_t>() == id);
      seq.push_back(id);
    }
  }
}

TEST_CASE("CUDA-graph decoding equals dynamic decoding on the GPU, batched with left padding", "[cuda][generate]") {
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 42, 7, 9, 11, 3, 60}, {23}, {8, 8, 8, 1}};
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    auto model = load_on_gpu(name, torch::kFloat32);
    granite::GenerationOptions g;
    g.max_new_tokens = 16;
    g.decode_steps = granite::DecodeSteps::Dynamic;
    const auto dynamic = granite::generate_batch(*model, prompts, g);
    g.decode_steps = granite::DecodeSteps::CudaGraph;
    CHECK(granite::generate_batch(*model, prompts, g) == dynamic);
    CHECK(granite::generate(*model, prompts[0], g) == dynamic[0]);
  }
  // The decoder really captured a graph and its replays give the eager step's logits.
  torch::NoGradGuard no_grad;
  auto model = load_on_gpu("llama_mha_bias_tied", torch::kFloat32);
  model->eval();
  granite::KVCache cache(model->config(), 1, 32, torch::kFloat32, torch::kCUDA);
  granite::KVCache reference(model->config(), 1, 32, torch::kFloat32, torch::kCUDA);
  const auto prompt = torch::tensor(std::vector<int64_t>{4, 8, 15, 16}, torch::kInt64).unsqueeze(0).cuda();
  model->forward(prompt, {}, &cache);
  model->forward(prompt, {}, &reference);
  const auto valid = torch::ones({1, 32}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
  granite::StaticDecoder decoder(*model, cache, valid, /*use_graph=*/true);
  for (int64_t step = 0; step < 4; ++step) {
    const int64_t id = 20 + step, slot = 4 + step;
    const auto got = decoder.step({id}, slot, {slot}).clone();
    const auto want = model->forward(torch::full({1, 1}, id, torch::kInt64).cuda(), {}, &reference).select(1, 0);
    CHECK(torch::allclose(got, want, 1e-4, 1e-4));
  }
  CHECK(decoder.captured());
}

TEST_CASE("SDPA attention equals the math fallback on the GPU", "[cuda][attention]") {
  REQUIRE(granite::compat::has_sdpa);
  auto opts = torch::TensorOptions().device(torch::kCUDA);
  struct Shape { int64_t H, Hkv, Tq, Tk, D; };
  // prefill (square, flash-eligible), GQA, MQA, head_dim 80 (Granite-3B), decode (Tq 1), chunked prefill (Tq < Tk)
  for (auto s : {Shape{8, 8, 64, 64, 128}, Shape{8, 2, 64, 64, 128}, Shape{8, 1, 33, 33, 64}, Shape{4, 4, 40, 40, 80},
                 Shape{8, 2, 1, 70, 128}, Shape{8, 8, 5, 37, 128}}) {
    for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      INFO("H " << s.H << " Hkv " << s.Hkv << " Tq " << s.Tq << " Tk " << s.Tk << " D " << s.D << " " << dtype);
      auto q = torch::randn({2, s.H, s.Tq, s.D}, opts).to(dtype);
      auto k = torch::randn({2, s.Hkv, s.Tk, s.D}, opts).to(dtype);
      auto v = torch::randn({2, s.Hkv, s.Tk, s.D}, opts).to(dtype);
      const double scale = 1.0 / std::sqrt(double(s.D));
      auto ref = granite::causal_attention(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64),
                                           scale, 0.0, granite::AttentionBackend::Math);
      auto math = granite::causal_attention(q, k, v, scale, 0.0, granite::AttentionBackend::Math);
      auto sdpa = granite::causal_attention(q, k, v, scale, 0.0, granite::AttentionBackend::SDPA);
      const double tol = dtype == torch::kFloat32 ? 1e-4 : 3e-2;
      REQUIRE_CLOSE(sdpa.to(torch::kFloat64), ref, tol);
      REQUIRE_CLOSE(math.to(torch::kFloat64), ref, tol);
    }
  }
}
