// granite-generate: load a Hugging Face model directory (or a fully sharded run's checkpoint) and continue a prompt
// (greedy or sampled, KV-cached).
//   granite-generate --model DIR --prompt-ids 5,17,42 --max-new-tokens 16 --greedy --format json
// prints one JSON line {"ids": [...]} with the new token ids only, plus "text" (their decoding) when the directory
// has a tokenizer (tokenizer.json or tokenizer.model); with a tokenizer, --prompt TEXT may replace --prompt-ids, and
// --chat asks an instruct model (the prompt as a user turn of its chat template; the answer up to end-of-text), and
// --prefix/--suffix fill in the middle (granite/generate/infill.h: the training's PSM or SPM layout).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "cli.h"
#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/generate/infill.h"
#include "granite/instruct/chat_template.h"
#include "granite/io/pretrained.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/train/checkpoint.h"

int main(int argc, char** argv) {
  CLI::App app{"Generate a continuation with a Granite Code model (HF model directory)."};
  std::string model_dir, prompt_ids, prompt_text, stop_ids, format = "json", device = "cpu", dtype;
  int64_t max_new_tokens = 32, top_k = 0;
  uint64_t seed = 0;
  double temperature = 1.0, top_p = 1.0;
  bool greedy = false;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors)")->required();
  auto* ids_opt = app.add_option("--prompt-ids", prompt_ids, "prompt as comma-separated token ids, e.g. 5,17,42");
  auto* text_opt = app.add_option("--prompt", prompt_text, "prompt text (needs a tokenizer in the model directory)");
  ids_opt->excludes(text_opt);
  std::string prefix, suffix;
  bool spm = false;
  auto* prefix_opt = app.add_option("--prefix", prefix, "fill in the middle: the code before the hole");
  auto* suffix_opt = app.add_option("--suffix", suffix, "fill in the middle: the code after the hole");
  app.add_flag("--spm", spm, "fill in the middle with the SPM layout (default PSM)");
  bool chat = false;
  app.add_flag("--chat", chat,
               "--prompt is a user turn: render the model's chat template around it (granite_chat_template.json in "
               "the model directory, else Granite's) and stop at the end-of-text token");
  app.add_option("--max-new-tokens", max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_flag("--greedy", greedy, "argmax decoding (the default unless a sampling option is given)");
  auto* t_opt = app.add_option("--temperature", temperature, "sampling temperature (> 0)");
  auto* k_opt = app.add_option("--top-k", top_k, "sample from the k most likely tokens (0 = off)");
  auto* p_opt = app.add_option("--top-p", top_p, "nucleus sampling mass (1 = off)");
  app.add_option("--seed", seed, "sampling seed")->capture_default_str();
  app.add_option("--stop-ids", stop_ids, "comma-separated ids that end generation (default: the config's eos)");
  std::vector<std::string> stop_strings;
  double repetition_penalty = 1.0;
  app.add_option("--stop", stop_strings, "text that ends generation once the output contains it (repeatable)");
  app.add_option("--repetition-penalty", repetition_penalty, "> 1 discourages repeating prompt or output tokens (HF's)")
      ->capture_default_str();
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
    const bool fim = prefix_opt->count() + suffix_opt->count() > 0;
    GRANITE_CHECK(fim ? ids_opt->count() + text_opt->count() == 0 && !chat
                      : ids_opt->count() + text_opt->count() == 1,
                  "give the prompt with --prompt-ids or --prompt, or a hole to fill with --prefix/--suffix");
    auto model = granite::load_model_or_checkpoint(model_dir, load);  // a sharded checkpoint too
    std::unique_ptr<granite::Tokenizer> tokenizer;
    namespace fs = std::filesystem;
    if (fs::exists(fs::path(model_dir) / "tokenizer.json") || fs::exists(fs::path(model_dir) / "tokenizer.model")) {
      tokenizer = granite::load_tokenizer(model_dir);
    }
    granite::GenerationOptions options;
    options.max_new_tokens = max_new_tokens;
    options.seed = seed;
    options.sampling.greedy = !sampling;
    options.sampling.temperature = temperature;
    options.sampling.top_k = top_k;
    options.sampling.top_p = top_p;
    if (!stop_ids.empty()) options.stop_ids = granite::cli::parse_ids(stop_ids, "--stop-ids");
    options.repetition_penalty = repetition_penalty;
    if (!stop_strings.empty()) {
      GRANITE_CHECK(tokenizer != nullptr, "--stop needs a tokenizer in ", model_dir);
      options.stop_strings = stop_strings;
      options.decode = [&](const std::vector<int64_t>& ids) {
        return tokenizer->decode(std::vector<granite::TokenId>(ids.begin(), ids.end()));
      };
    }
    if (fim) {  // the middle, as JSON {"ids", "text", "stopped"}
      GRANITE_CHECK(tokenizer != nullptr, "--prefix/--suffix need a tokenizer in ", model_dir);
      const granite::InfillResult r =
          granite::infill(*model, *tokenizer, prefix, suffix, options, spm ? granite::FimLayout::kSpm
                                                                          : granite::FimLayout::kPsm);
      std::cout << granite::Json{{"ids", r.ids}, {"text", r.middle}, {"stopped", r.stopped}}.dump() << "\n";
      return 0;
    }
    std::vector<int64_t> prompt;
    if (text_opt->count()) {
      GRANITE_CHECK(tokenizer != nullptr, "--prompt needs a tokenizer.json or tokenizer.model in ", model_dir,
                    " (or give --prompt-ids)");
      std::string text = prompt_text;
      if (chat) {
        const fs::path custom = fs::path(model_dir) / "granite_chat_template.json";
        const granite::ChatTemplate tmpl =
            fs::exists(custom) ? granite::chat_template_from_json(granite::read_json_file(custom.string()), custom.string())
                               : granite::ChatTemplate{};
        text = granite::render_chat(tmpl, {{"user", prompt_text}}, /*add_generation_prompt=*/true);
      }
      for (auto id : tokenizer->encode(text)) prompt.push_back(id);
    } else {
      GRANITE_CHECK(!chat, "--chat needs the prompt as text (--prompt)");
      prompt = granite::cli::parse_ids(prompt_ids, "--prompt-ids");
    }

    if (stop_ids.empty()) options.stop_ids = {model->config().eos_token_id};
    auto decode = [&](const std::vector<int64_t>& ids) {
      return tokenizer->decode(std::vector<granite::TokenId>(ids.begin(), ids.end()));
    };
    if (format == "text") {  // stream: decoded text when there is a tokenizer, else ids
      std::vector<int64_t> so_far;
      std::string printed;
      granite::generate(*model, prompt, options, [&](int64_t id) {
        if (!tokenizer) {
          std::cout << id << ' ' << std::flush;
          return;
        }
        so_far.push_back(id);
        std::string text = decode(so_far);  // re-decode so multi-token UTF-8 characters print whole
        const bool partial_char = text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
        if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0 && !partial_char) {
          std::cout << text.substr(printed.size()) << std::flush;
          printed = text;
        }
      });
      if (tokenizer && !so_far.empty()) std::cout << decode(so_far).substr(printed.size());
      std::cout << "\n";
    } else {
      auto ids = granite::generate(*model, prompt, options);
      if (chat && !ids.empty() && ids.back() == model->config().eos_token_id) ids.pop_back();  // the answer alone
      granite::Json out{{"ids", ids}};
      if (tokenizer) out["text"] = decode(ids);
      std::cout << out.dump() << "\n";
    }
    return 0;
  }, granite::cli::describe_torch_error);
}
