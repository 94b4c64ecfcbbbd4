// granite-generate: load a Hugging Face model directory and continue a prompt (greedy or sampled, KV-cached).
//   granite-generate --model DIR --prompt-ids 5,17,42 --max-new-tokens 16 --greedy --format json
// prints one JSON line {"ids": [...]} with the new token ids only.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli.h"
#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/io/pretrained.h"

int main(int argc, char** argv) {
  CLI::App app{"Generate a continuation with a Granite Code model (HF model directory)."};
  std::string model_dir, prompt_ids, stop_ids, format = "json", device = "cpu", dtype;
  int64_t max_new_tokens = 32, top_k = 0;
  uint64_t seed = 0;
  double temperature = 1.0, top_p = 1.0;
  bool greedy = false;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors)")->required();
  app.add_option("--prompt-ids", prompt_ids, "prompt as comma-separated token ids, e.g. 5,17,42")->required();
  app.add_option("--max-new-tokens", max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_flag("--greedy", greedy, "argmax decoding (the default unless a sampling option is given)");
  auto* t_opt = app.add_option("--temperature", temperature, "sampling temperature (> 0)");
  auto* k_opt = app.add_option("--top-k", top_k, "sample from the k most likely tokens (0 = off)");
  auto* p_opt = app.add_option("--top-p", top_p, "nucleus sampling mass (1 = off)");
  app.add_option("--seed", seed, "sampling seed")->capture_default_str();
  app.add_option("--stop-ids", stop_ids, "comma-separated ids that end generation (default: the config's eos)");
  app.add_option("--format", format, "json: one line {\"ids\": [...]}; text: ids streamed as they come")
      ->check(CLI::IsMember({"json", "text"}))
      ->capture_default_str();
  app.add_option("--device", device, "cpu, cuda, cuda:N")->capture_default_str();
  app.add_option("--dtype", dtype, "float32 | bfloat16 | float16 (default: float32 on CPU, the checkpoint's on GPU)");
  CLI11_PARSE(app, argc, argv);

  return granite::cli::guarded_main("granite-generate", [&] {
    const bool sampling = t_opt->count() + k_opt->count() + p_opt->count() > 0;
    GRANITE_CHECK(!(greedy && sampling), "--greedy cannot be combined with --temperature/--top-k/--top-p");
    granite::LoadOptions load;
    load.device = granite::cli::parse_device(device);
    if (!dtype.empty()) load.dtype = granite::cli::parse_dtype(dtype);
    auto prompt = granite::cli::parse_ids(prompt_ids, "--prompt-ids");
    auto model = granite::load_pretrained(model_dir, load);

    granite::GenerationOptions options;
    options.max_new_tokens = max_new_tokens;
    options.seed = seed;
    options.sampling.greedy = !sampling;
    options.sampling.temperature = temperature;
    options.sampling.top_k = top_k;
    options.sampling.top_p = top_p;
    options.stop_ids = stop_ids.empty() ? std::vector<int64_t>{model->config().eos_token_id}
                                        : granite::cli::parse_ids(stop_ids, "--stop-ids");
    if (format == "text") {
      granite::generate(*model, prompt, options, [](int64_t id) { std::cout << id << ' ' << std::flush; });
      std::cout << "\n";
    } else {
      auto ids = granite::generate(*model, prompt, options);
      std::cout << granite::Json{{"ids", ids}}.dump() << "\n";
    }
    return 0;
  });
}
