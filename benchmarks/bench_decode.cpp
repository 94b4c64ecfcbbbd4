// Generation throughput on one GPU: the work benchmarks/hf_decode_baseline.py gives transformers, in the same run.
//   bench_decode CONFIG [PROMPT_TOKENS=128] [NEW_TOKENS=256] [BATCHES=1,8] [profile|quick]
// Random weights of CONFIG's shape (configs/models/granite-3b-code-base-2k.json: Granite-3B-Code), bf16. Decode: a
// random prompt, then NEW_TOKENS greedy tokens (no stop id, so every run generates them all) after a 16-token
// warm-up, per batch size and per decode mode (dynamic shapes; static shapes captured in a CUDA graph), with the
// projections packed as granite-generate does. Before that, the decode step alone, with and without the fused
// kernels (granite/kernels/fused_ops.h) and the packed projections. Prefill: the forward over (8, 2048) tokens, 5
// timed after 2 warm-ups, as the HF script. Also each projection of a decode step alone, by the decode GEMV kernel
// and by cuBLAS, per row count, and its attention by the fused kernel and by SDPA (device time: calls replayed from a
// CUDA graph), one-row GEMVs per layout, launches overlapped or not. One JSON line per measurement.
// With "profile" last: only one eager static decode step (fused, packed, first batch size) inside an NVTX range
// "decode_step", for `ncu --nvtx --nvtx-include decode_step/` (scripts/gpu.sh profile-decode). With "quick": only the
// one-row GEMV layouts, the packed fused step and CUDA-graph generation (a short device session).
#include <torch/cuda.h>
#include <torch/nn/functional/linear.h>

#if __has_include(<ATen/cuda/CUDAGraph.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define GRANITE_BENCH_GRAPHS 1
#endif
#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define GRANITE_BENCH_NVTX 1
#endif

#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>

#include "granite/config/model_config.h"
#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/generate/static_decode.h"
#include "granite/kernels/fused_ops.h"
#include "granite/models/factory.h"
#include "granite/nn/attention.h"
#include "granite/nn/rotary.h"

namespace {

using Clock = std::chrono::steady_clock;

double timed(const std::function<void()>& work) {
  torch::cuda::synchronize();
  const auto start = Clock::now();
  work();
  torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Seconds per call of f on the device alone: 20 warm-up calls, then `calls` of them captured in a CUDA graph and
// replayed (timing eager calls would time the host's launch overhead for kernels this short).
double per_call(int calls, const std::function<void(int)>& f) {
  for (int i = 0; i < 20; ++i) f(i);
#if GRANITE_BENCH_GRAPHS
  const auto side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  {
    torch::cuda::synchronize();
    c10::cuda::CUDAStreamGuard on_side(side);
    graph.capture_begin();
    for (int i = 0; i < calls; ++i) f(i);
    graph.capture_end();
  }
  graph.replay();  // warm
  return timed([&] { graph.replay(); }) / calls;
#else
  return timed([&] {
           for (int i = 0; i < calls; ++i) f(i);
         }) /
         calls;
#endif
}

std::vector<int64_t> parse_list(const std::string& csv) {
  std::vector<int64_t> out;
  std::stringstream in(csv);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_decode CONFIG [PROMPT_TOKENS] [NEW_TOKENS] [BATCHES]\n";
    return 2;
  }
  const int64_t prompt_tokens = argc > 2 ? std::stoll(argv[2]) : 128;
  const int64_t new_tokens = argc > 3 ? std::stoll(argv[3]) : 256;
  const auto batches = parse_list(argc > 4 ? argv[4] : "1,8");
  const bool profile = argc > 5 && std::string(argv[5]) == "profile";
  const bool quick = argc > 5 && std::string(argv[5]) == "quick";
  const granite::ModelConfig cfg = granite::load_model_config(argv[1]);
  torch::manual_seed(0);
  auto model = granite::make_model(cfg, /*initialize=*/false);
  model->to(torch::kCUDA, torch::kBFloat16);
  granite::initialize_weights(*model, [](const std::string&) { return false; });
  model->eval();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  const auto prompt = torch::randint(5, cfg.vocab_size, {prompt_tokens}, torch::kInt64);
  const std::vector<int64_t> prompt_ids(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt_tokens);
  // The decode step alone, device-bound: StaticDecoder steps (eager static shapes, then replays of the captured
  // graph) at slots 128.., without sampling or bookkeeping. Against the bytes every step must read (the weights, at
  // the H100's 3.35 TB/s) this separates what the kernels cost from what the generation loop adds around them.
  auto measure_steps = [&](bool packed, const std::vector<std::pair<bool, bool>>& variants) {
    for (int64_t batch : batches) {
      torch::NoGradGuard no_grad;
      for (const auto& [fused, graph] : variants) {
        granite::kernels::set_fused_enabled(fused);
        const int64_t capacity = prompt_tokens + new_tokens, steps = new_tokens - 16;
        granite::KVCache cache(cfg, batch, capacity, torch::kBFloat16, torch::kCUDA);
        const auto valid =
            torch::ones({batch, capacity}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
        granite::StaticDecoder decoder(*model, cache, valid, graph);
        const std::vector<int64_t> ids(size_t(batch), 7);
        int64_t slot = prompt_tokens;
        auto step = [&] {
          decoder.step(ids, slot, std::vector<int64_t>(size_t(batch), slot));
          ++slot;
        };
        for (int i = 0; i < 16; ++i) step();  // capture + warm-up
        const double seconds = timed([&] {
          for (int64_t i = 0; i < steps; ++i) step();
        });
        const double bytes = 2.0 * double(params);
        granite::Json j{{"bench", "decode_step"},
                        {"mode", graph ? "cuda_graph" : "static_eager"},
                        {"fused_kernels", fused},
                        {"overlapped_launches", fused && granite::kernels::overlapped_launches()},
                        {"packed_projections", packed},
                        {"batch", batch},
                        {"step_ms", 1e3 * seconds / double(steps)},
                        {"weights_bound_ms", 1e3 * bytes / 3.35e12},
                        {"captured", decoder.captured()}};
        std::cout << j.dump() << std::endl;
      }
      granite::kernels::set_fused_enabled(true);
    }
  };
  if (profile) {
    torch::NoGradGuard no_grad;
    model->pack_for_inference();
    const int64_t batch = batches.at(0), capacity = prompt_tokens + new_tokens;
    granite::KVCache cache(cfg, batch, capacity, torch::kBFloat16, torch::kCUDA);
    const auto valid = torch::ones({batch, capacity}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
    granite::StaticDecoder decoder(*model, cache, valid, /*use_graph=*/false);
    const std::vector<int64_t> ids(size_t(batch), 7);
    for (int64_t slot = prompt_tokens; slot < prompt_tokens + 16; ++slot) {
      decoder.step(ids, slot, std::vector<int64_t>(size_t(batch), slot));
    }
    torch::cuda::synchronize();
#if GRANITE_BENCH_NVTX
    nvtxRangePushA("decode_step");
#else
    std::cerr << "bench_decode: built without NVTX headers: the profile range is not marked\n";
#endif
    decoder.step(ids, prompt_tokens + 16, std::vector<int64_t>(size_t(batch), prompt_tokens + 16));
    torch::cuda::synchronize();
#if GRANITE_BENCH_NVTX
    nvtxRangePop();
#endif
    return 0;
  }

  // Each projection of a decode step alone at 1..8 rows: the decode GEMV kernel against cuBLAS (F::linear), on
  // enough copies of the weight that they do not stay in the 50 MB L2 between calls (a decode step reads each
  // weight once). Where the kernel wins decides kernels::kGemvRowsBeatingCublas.
  {
    torch::NoGradGuard no_grad;
    const int64_t C = cfg.hidden_size, I = cfg.intermediate_size, D = cfg.resolved_head_dim();
    const int64_t Hq = cfg.num_attention_heads, Hk = cfg.num_key_value_heads;
    struct Shape {
      const char* name;
      int64_t n, k;
      bool bias;
    };
    const Shape shapes[] = {{"qkv", (Hq + 2 * Hk) * D, C, cfg.attention_bias},
                            {"o", C, Hq * D, cfg.attention_bias},
                            {"gate_up", 2 * I, C, cfg.mlp_bias},
                            {"down", C, I, cfg.mlp_bias},
                            {"lm_head", cfg.vocab_size, C, false}};
    const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
    for (const auto& shape : shapes) {
      const double bytes = 2.0 * double(shape.n * shape.k);
      const int copies = int(std::max(1.0, std::ceil(256e6 / bytes)));
      std::vector<torch::Tensor> weights;
      for (int c = 0; c < copies; ++c) weights.push_back(torch::randn({shape.n, shape.k}, opts) * 0.02);
      const auto bias = shape.bias ? torch::randn({shape.n}, opts) : torch::Tensor();
      for (int64_t rows = 1; rows <= (quick ? 0 : 8); ++rows) {
        const auto x = torch::randn({rows, shape.k}, opts);
        const double ours = per_call(200, [&](int i) { granite::kernels::gemv(x, weights[size_t(i % copies)], bias); });
        const double cublas = per_call(200, [&](int i) {
          torch::nn::functional::linear(x, weights[size_t(i % copies)], bias);
        });
        granite::Json j{{"bench", "linear"}, {"name", shape.name},     {"rows", rows},
                        {"n", shape.n},      {"k", shape.k},           {"bias", shape.bias},
                        {"gemv_us", 1e6 * ours}, {"cublas_us", 1e6 * cublas}, {"gemv_tb_s", bytes / ours / 1e12},
                        {"cublas_tb_s", bytes / cublas / 1e12}};
        std::cout << j.dump() << std::endl;
      }
      // One row: each way of dealing rows to warps (the automatic choice is one of them), launches overlapped (the
      // default) and not; for gate/up also silu*up inside the GEMV against the GEMV then the elementwise kernel.
      const auto x = torch::randn({1, shape.k}, opts);
      auto report = [&](const std::string& form, granite::kernels::GemvLayout layout, bool overlapped, double s) {
        granite::Json j{{"bench", "gemv_layout"}, {"name", shape.name}, {"form", form},
                        {"rows_per_warp", layout.rows_per_warp}, {"split", layout.split},
                        {"overlapped_launches", overlapped}, {"us", 1e6 * s}, {"tb_s", bytes / s / 1e12}};
        std::cout << j.dump() << std::endl;
      };
      for (bool overlapped : {true, false}) {
        granite::kernels::set_overlapped_launches(overlapped);
        for (auto layout : {granite::kernels::GemvLayout{0, 0}, {1, 1}, {2, 1}, {1, 2}, {1, 4}}) {
          if (!overlapped && layout.rows_per_warp != 0) continue;
          report("gemv", layout, overlapped, per_call(200, [&](int i) {
                   granite::kernels::gemv(x, weights[size_t(i % copies)], bias, layout);
                 }));
        }
        if (std::string(shape.name) == "qkv") {  // with rope and the KV cache writes: after the GEMV, or inside it
          const int64_t cap = prompt_tokens + new_tokens;
          const auto keys = torch::zeros({1, Hk, cap, D}, opts), values = torch::zeros({1, Hk, cap, D}, opts);
          auto [cos, sin] = granite::rope_cos_sin(torch::full({1, 1}, prompt_tokens, torch::kInt64).cuda(), D,
                                                  cfg.rope_theta, torch::kBFloat16);
          const auto slots = torch::full({1}, prompt_tokens, torch::TensorOptions().dtype(torch::kInt64).device(
                                                                  torch::kCUDA));
          report("gemv+rope_into_cache", {0, 0}, overlapped, per_call(200, [&](int i) {
                   const auto qkv = granite::kernels::gemv(x, weights[size_t(i % copies)], bias).view({1, 1, -1});
                   granite::kernels::rope_into_cache(qkv.narrow(-1, 0, Hq * D).view({1, 1, Hq, D}),
                                                     qkv.narrow(-1, Hq * D, Hk * D).view({1, 1, Hk, D}),
                                                     qkv.narrow(-1, (Hq + Hk) * D, Hk * D).view({1, 1, Hk, D}),
                                                     cos, sin, keys, values, slots, 0);
                 }));
          for (auto layout : {granite::kernels::GemvLayout{0, 0}, {2, 1}, {2, 2}}) {
            if (!overlapped && layout.rows_per_warp != 0) continue;
            report("gemv_rope_into_cache", layout, overlapped, per_call(200, [&](int i) {
                     granite::kernels::gemv_rope_into_cache(x.view({1, 1, -1}), weights[size_t(i % copies)], bias,
                                                            Hq, Hk, cos, sin, keys, values, slots, 0, layout);
                   }));
          }
        }
        if (std::string(shape.name) == "gate_up") {
          const int64_t half = shape.n / 2;
          report("gemv+silu_mul", {0, 0}, overlapped, per_call(200, [&](int i) {
                   const auto gu = granite::kernels::gemv(x, weights[size_t(i % copies)], bias);
                   granite::kernels::silu_mul(gu.narrow(-1, 0, half), gu.narrow(-1, half, half));
                 }));
          for (auto layout : {granite::kernels::GemvLayout{0, 0}, {2, 1}, {2, 2}}) {
            if (!overlapped && layout.rows_per_warp != 0) continue;
            report("gemv_swiglu", layout, overlapped, per_call(200, [&](int i) {
                     granite::kernels::gemv_swiglu(x, weights[size_t(i % copies)], bias, layout);
                   }));
          }
        }
      }
      granite::kernels::set_overlapped_launches(true);
    }
  }

  // A decode step's attention alone (batch 1, the prompt's and new tokens' slots, additive mask as StaticDecoder
  // makes it): the fused kernel against SDPA.
  if (!quick) {
    torch::NoGradGuard no_grad;
    const int64_t H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, D = cfg.resolved_head_dim();
    const int64_t Tk = prompt_tokens + new_tokens;
    const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
    const auto q = torch::randn({1, 1, H, D}, opts).transpose(1, 2);
    const auto k = torch::randn({1, Hkv, Tk, D}, opts), v = torch::randn({1, Hkv, Tk, D}, opts);
    const auto mask = granite::additive_mask(
        (torch::arange(Tk, torch::kCUDA) <= prompt_tokens).view({1, 1, 1, Tk}), torch::kBFloat16);
    const double scale = 1.0 / std::sqrt(double(D));
    const double fused = per_call(200, [&](int) { granite::kernels::decode_attention(q, k, v, scale, mask); });
    granite::kernels::set_fused_enabled(false);
    const double sdpa = per_call(200, [&](int) {
      granite::causal_attention(q, k, v, scale, 0.0, granite::AttentionBackend::Auto, mask);
    });
    granite::kernels::set_fused_enabled(true);
    granite::Json j{{"bench", "decode_attention"}, {"heads", H}, {"kv_heads", Hkv}, {"head_dim", D}, {"keys", Tk},
                    {"fused_us", 1e6 * fused}, {"sdpa_us", 1e6 * sdpa}};
    std::cout << j.dump() << std::endl;
  }

  // Composite ops and separate projections (what the model is without the inference work), then each step added.
  if (!quick) measure_steps(false, {{false, false}, {false, true}, {true, false}, {true, true}});
  model->pack_for_inference();  // what granite-generate and granite-eval do after loading
  measure_steps(true, {{true, false}, {true, true}});
  granite::kernels::set_overlapped_launches(false);  // what overlapping the kernels' launches gains
  measure_steps(true, {{true, true}});
  granite::kernels::set_overlapped_launches(true);

  auto measure_generation = [&](granite::DecodeSteps mode, const char* name, int64_t batch) {
    const std::vector<std::vector<int64_t>> prompts(size_t(batch), prompt_ids);
    granite::GenerationOptions o;
    o.decode_steps = mode;
    o.stop_ids = {};  // never stop early: exactly new_tokens per row, like HF's min_new_tokens
    o.max_new_tokens = 16;
    granite::generate_batch(*model, prompts, o);  // warm-up (kernels, allocator, cuBLAS)
    o.max_new_tokens = new_tokens;
    std::vector<std::vector<int64_t>> out;
    const double seconds = timed([&] { out = granite::generate_batch(*model, prompts, o); });
    granite::Json j{{"bench", "decode"},
                    {"mode", name},
                    {"batch", batch},
                    {"overlapped_launches", granite::kernels::overlapped_launches()},
                    {"prompt_tokens", prompt_tokens},
                    {"new_tokens", new_tokens},
                    {"seconds", seconds},
                    {"tok_s", double(batch * new_tokens) / seconds},
                    {"first_ids", std::vector<int64_t>(out[0].begin(), out[0].begin() + 8)},
                    {"params", params},
                    {"gpu", torch::cuda::is_available() ? "cuda" : "none"}};
    std::cout << j.dump() << std::endl;
  };
  for (const auto& [mode, name] : {std::pair{granite::DecodeSteps::Dynamic, "dynamic"},
                                   std::pair{granite::DecodeSteps::CudaGraph, "cuda_graph"}}) {
    if (quick && mode == granite::DecodeSteps::Dynamic) continue;
    for (int64_t batch : batches) measure_generation(mode, name, batch);
  }
  granite::kernels::set_overlapped_launches(false);
  measure_generation(granite::DecodeSteps::CudaGraph, "cuda_graph", batches.at(0));
  granite::kernels::set_overlapped_launches(true);

  // Prefill: the forward of (8, 2048) tokens (logits included), as HF's model(input_ids=x).
  if (!quick) {
    torch::NoGradGuard no_grad;
    const int64_t B = 8, S = std::min<int64_t>(2048, cfg.max_position_embeddings);
    const auto x = torch::randint(0, cfg.vocab_size, {B, S}, torch::TensorOptions().dtype(torch::kInt64)).cuda();
    for (int i = 0; i < 2; ++i) model->forward(x);
    const double seconds = timed([&] {
                             for (int i = 0; i < 5; ++i) model->forward(x);
                           }) / 5;
    const double L = double(cfg.num_hidden_layers), d = double(cfg.hidden_size);
    const double tok_s = double(B * S) / seconds;
    granite::Json j{{"bench", "prefill"}, {"batch", B}, {"seq", S}, {"seconds", seconds}, {"tok_s", tok_s},
                    {"mfu", tok_s * (2.0 * double(params) + 4.0 * L * d * double(S)) / 989.4e12}};
    std::cout << j.dump() << std::endl;
  }
  return 0;
}
