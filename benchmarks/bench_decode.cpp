// Generation throughput on one GPU: the work benchmarks/hf_decode_baseline.py gives transformers, in the same run.
//   bench_decode CONFIG [PROMPT_TOKENS=128] [NEW_TOKENS=256] [BATCHES=1,8]
// Random weights of CONFIG's shape (configs/models/granite-3b-code-base-2k.json: Granite-3B-Code), bf16. Decode: a
// random prompt, then NEW_TOKENS greedy tokens (no stop id, so every run generates them all) after a 16-token
// warm-up, per batch size and per decode mode (dynamic shapes; static shapes captured in a CUDA graph), with the
// projections packed as granite-generate does. Before that, the decode step alone, with and without the fused
// kernels (granite/kernels/fused_ops.h) and the packed projections. Prefill: the forward over (8, 2048) tokens, 5
// timed after 2 warm-ups, as the HF script. One JSON line per measurement.
#include <torch/cuda.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include "granite/config/model_config.h"
#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/generate/static_decode.h"
#include "granite/kernels/fused_ops.h"
#include "granite/models/factory.h"

namespace {

using Clock = std::chrono::steady_clock;

double timed(const std::function<void()>& work) {
  torch::cuda::synchronize();
  const auto start = Clock::now();
  work();
  torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count();
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
  // Composite ops and separate projections (what the model is without the inference work), then each step added.
  measure_steps(false, {{false, false}, {false, true}, {true, false}, {true, true}});
  model->pack_for_inference();  // what granite-generate and granite-eval do after loading
  measure_steps(true, {{true, false}, {true, true}});

  for (const auto& [mode, name] : {std::pair{granite::DecodeSteps::Dynamic, "dynamic"},
                                   std::pair{granite::DecodeSteps::CudaGraph, "cuda_graph"}}) {
    for (int64_t batch : batches) {
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
                      {"prompt_tokens", prompt_tokens},
                      {"new_tokens", new_tokens},
                      {"seconds", seconds},
                      {"tok_s", double(batch * new_tokens) / seconds},
                      {"first_ids", std::vector<int64_t>(out[0].begin(), out[0].begin() + 8)},
                      {"params", params},
                      {"gpu", torch::cuda::is_available() ? "cuda" : "none"}};
      std::cout << j.dump() << std::endl;
    }
  }

  // Prefill: the forward of (8, 2048) tokens (logits included), as HF's model(input_ids=x).
  {
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
