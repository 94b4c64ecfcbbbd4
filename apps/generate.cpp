// granite-generate: load a Hugging Face model directory (or a fully sharded run's checkpoint) and continue a prompt
// (greedy or sampled, KV-cached).
//   granite-generate --model DIR --prompt-ids 5,17,42 --max-new-tokens 16 --greedy --format json
// prints one JSON line {"ids": [...]} with the new token ids only, plus "text" (their decoding) when the directory
// has a tokenizer (tokenizer.json or tokenizer.model). With a tokenizer the prompt may be text (--prompt, or
// --prompt-file FILE / - for stdin); --chat asks an instruct model (the prompt as a user turn of its chat template,
// the answer up to end-of-text); --prefix/--suffix fill in the middle (granite/generate/infill.h: the training's PSM
// or SPM layout); --input FILE (- for stdin) answers JSONL requests, one JSON line per request, in order,
// --batch-size N of them generated together.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>

#include "cli.h"
#include "granite/core/json.h"
#include "granite/generate/generator.h"
#include "granite/generate/infill.h"
#include "granite/instruct/chat_template.h"
#include "granite/io/pretrained.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/train/checkpoint.h"

namespace {

// One generation to make: a prompt (text, optionally a chat turn; or ids) or a hole to fill (prefix/suffix).
struct Request {
  std::string text;
  std::vector<int64_t> ids;  // when given as ids
  bool has_ids = false, chat = false, fim = false;
  std::string prefix, suffix;
};

// A request from one JSONL line: {"prompt": TEXT, "chat": BOOL} | {"prompt_ids": [...]} | {"prefix", "suffix"}.
Request request_from_json(const granite::Json& j, const std::string& where) {
  GRANITE_CHECK(j.is_object(), where, ": a request must be a JSON object, got ", granite::json_preview(j));
  Request r;
  const auto text = [&](const char* key) {
    GRANITE_CHECK(j[key].is_string(), where, ": \"", key, "\" must be a string");
    return j[key].get<std::string>();
  };
  if (j.contains("prompt_ids")) {
    GRANITE_CHECK(j["prompt_ids"].is_array(), where, ": \"prompt_ids\" must be an array of token ids");
    for (const auto& id : j["prompt_ids"]) {
      GRANITE_CHECK(id.is_number_integer(), where, ": \"prompt_ids\" holds ", granite::json_preview(id));
      r.ids.push_back(id.get<int64_t>());
    }
    r.has_ids = true;
  } else if (j.contains("prefix") || j.contains("suffix")) {
    r.fim = true;
    if (j.contains("prefix")) r.prefix = text("prefix");
    if (j.contains("suffix")) r.suffix = text("suffix");
  } else {
    GRANITE_CHECK(j.contains("prompt"), where, ": expected \"prompt\", \"prompt_ids\" or \"prefix\"/\"suffix\"");
    r.text = text("prompt");
    if (j.contains("chat")) {
      GRANITE_CHECK(j["chat"].is_boolean(), where, ": \"chat\" must be true or false");
      r.chat = j["chat"].get<bool>();
    }
  }
  return r;
}

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

struct Generator {
  granite::CausalLM model;
  std::unique_ptr<granite::Tokenizer> tokenizer;
  std::string model_dir;
  granite::GenerationOptions options;
  bool spm = false;

  std::string decode(const std::vector<int64_t>& ids) const {
    return tokenizer->decode(std::vector<granite::TokenId>(ids.begin(), ids.end()));
  }

  // The prompt's ids (chat template applied when asked).
  std::vector<int64_t> prompt_ids(const Request& r) const {
    GRANITE_CHECK(!r.chat || !r.has_ids, "--chat needs the prompt as text");
    if (r.has_ids) return r.ids;
    GRANITE_CHECK(tokenizer != nullptr, "--prompt needs a tokenizer.json or tokenizer.model in ", model_dir,
                  " (as any text prompt: --prompt-file, --input; or give --prompt-ids)");
    std::string text = r.text;
    if (r.chat)
      text = granite::render_chat(granite::model_chat_template(model_dir), {{"user", r.text}},
                                  /*add_generation_prompt=*/true);
    std::vector<int64_t> ids;
    for (auto id : tokenizer->encode(text)) ids.push_back(id);
    return ids;
  }

  // {"ids", "text"} (and "stopped" for a hole filled).
  granite::Json answer(const Request& r) const { return answer_all({r}).front(); }

  // The answers of several requests, generated together (granite::generate_batch: left-padded, every row as its
  // request alone, the same seed for each). Holes to fill stop at other ids than prompts, so each kind has its own
  // batch.
  std::vector<granite::Json> answer_all(const std::vector<Request>& requests) const {
    std::vector<granite::Json> answers(requests.size());
    for (const bool fim : {false, true}) {
      std::vector<size_t> rows;
      std::vector<std::vector<int64_t>> prompts;
      for (size_t i = 0; i < requests.size(); ++i) {
        const Request& r = requests[i];
        if (r.fim != fim) continue;
        rows.push_back(i);
        prompts.push_back(fim ? fim_prompt_ids(r) : prompt_ids(r));
      }
      if (rows.empty()) continue;
      granite::GenerationOptions o = fim ? granite::infill_options(*tokenizer, options) : options;
      o.row_seeds.assign(rows.size(), options.seed);
      const auto generated = granite::generate_batch(*model, prompts, o);
      for (size_t k = 0; k < rows.size(); ++k) answers[rows[k]] = finish(requests[rows[k]], generated[k]);
    }
    return answers;
  }

  std::vector<int64_t> fim_prompt_ids(const Request& r) const {
    GRANITE_CHECK(tokenizer != nullptr, "--prefix/--suffix need a tokenizer in ", model_dir);
    const auto ids = granite::fim_prompt(*tokenizer, r.prefix, r.suffix,
                                         spm ? granite::FimLayout::kSpm : granite::FimLayout::kPsm);
    return {ids.begin(), ids.end()};
  }

  // A request's generated ids as its answer line.
  granite::Json finish(const Request& r, std::vector<int64_t> ids) const {
    if (r.fim) {
      const granite::InfillResult fill = granite::infill_result(*tokenizer, std::move(ids));
      return granite::Json{{"ids", fill.ids}, {"text", fill.middle}, {"stopped", fill.stopped}};
    }
    if (r.chat && !ids.empty() && ids.back() == model->config().eos_token_id) ids.pop_back();  // the answer alone
    granite::Json out{{"ids", ids}};
    if (tokenizer) out["text"] = decode(ids);
    return out;
  }

  // Streams the continuation's text (ids without a tokenizer) as it is generated.
  void stream(const Request& r) const {
    std::vector<int64_t> so_far;
    std::string printed;
    granite::generate(*model, prompt_ids(r), options, [&](int64_t id) {
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
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate a continuation with a Granite Code model (HF model directory)."};
  std::string model_dir, prompt_ids, prompt_text, prompt_file, input, stop_ids, format = "json", device = "cpu", dtype;
  int64_t max_new_tokens = 32, top_k = 0, batch_size = 1;
  uint64_t seed = 0;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
  bool greedy = false, spm = false, chat = false;
  std::string prefix, suffix;
  std::vector<std::string> stop_strings;
  app.add_option("--model", model_dir, "model directory (config.json + safetensors), or a sharded checkpoint")
      ->required();
  auto* ids_opt = app.add_option("--prompt-ids", prompt_ids, "prompt as comma-separated token ids, e.g. 5,17,42");
  auto* text_opt = app.add_option("--prompt", prompt_text, "prompt text (needs a tokenizer in the model directory)");
  auto* file_opt = app.add_option("--prompt-file", prompt_file, "prompt text from a file (- for standard input)");
  auto* input_opt = app.add_option("--input", input,
                                   "JSONL requests, one per line (- for standard input): {\"prompt\", \"chat\"}, "
                                   "{\"prompt_ids\"} or {\"prefix\", \"suffix\"}; one JSON answer line each");
  auto* prefix_opt = app.add_option("--prefix", prefix, "fill in the middle: the code before the hole");
  auto* suffix_opt = app.add_option("--suffix", suffix, "fill in the middle: the code after the hole");
  app.add_flag("--spm", spm, "fill in the middle with the SPM layout (default PSM)");
  app.add_flag("--chat", chat,
               "the prompt is a user turn: render the model's chat template around it (granite_chat_template.json "
               "in the model directory, else Granite's) and stop at the end-of-text token");
  app.add_option("--max-new-tokens", max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_option("--batch-size", batch_size, "--input: requests generated together (each answer as if alone)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--greedy", greedy, "argmax decoding (the default unless a sampling option is given)");
  auto* t_opt = app.add_option("--temperature", temperature, "sampling temperature (> 0)");
  auto* k_opt = app.add_option("--top-k", top_k, "sample from the k most likely tokens (0 = off)");
  auto* p_opt = app.add_option("--top-p", top_p, "nucleus sampling mass (1 = off)");
  app.add_option("--seed", seed, "sampling seed")->capture_default_str();
  app.add_option("--stop-ids", stop_ids, "comma-separated ids that end generation (default: the config's eos)");
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
    namespace fs = std::filesystem;
    const bool sampling = t_opt->count() + k_opt->count() + p_opt->count() > 0;
    GRANITE_CHECK(!(greedy && sampling), "--greedy cannot be combined with --temperature/--top-k/--top-p");
    const bool fim = prefix_opt->count() + suffix_opt->count() > 0;
    GRANITE_CHECK(ids_opt->count() + text_opt->count() + file_opt->count() + input_opt->count() + (fim ? 1 : 0) == 1,
                  "give one of --prompt, --prompt-ids, --prompt-file, --input, or a hole to fill with --prefix/--suffix");
    GRANITE_CHECK(format == "json" || (!fim && !input_opt->count()), "--format text is for a single prompt");
    granite::LoadOptions load;
    load.device = granite::cli::parse_device(device);
    if (!dtype.empty()) load.dtype = granite::cli::parse_dtype(dtype);
    Generator g;
    g.model_dir = model_dir;
    g.model = granite::load_model_or_checkpoint(model_dir, load);  // a sharded checkpoint too
    g.model->pack_for_inference();
    if (fs::exists(fs::path(model_dir) / "tokenizer.json") || fs::exists(fs::path(model_dir) / "tokenizer.model"))
      g.tokenizer = granite::load_tokenizer(model_dir);
    g.spm = spm;
    g.options.max_new_tokens = max_new_tokens;
    g.options.seed = seed;
    g.options.sampling.greedy = !sampling;
    g.options.sampling.temperature = temperature;
    g.options.sampling.top_k = top_k;
    g.options.sampling.top_p = top_p;
    g.options.repetition_penalty = repetition_penalty;
    g.options.stop_ids = stop_ids.empty() ? std::vector<int64_t>{g.model->config().eos_token_id}
                                          : granite::cli::parse_ids(stop_ids, "--stop-ids");
    if (!stop_strings.empty()) {
      GRANITE_CHECK(g.tokenizer != nullptr, "--stop needs a tokenizer in ", model_dir);
      g.options.stop_strings = stop_strings;
      g.options.decode = [&g](const std::vector<int64_t>& ids) { return g.decode(ids); };
    }
    if (input_opt->count()) {  // one answer line per request line, in order
      std::ifstream file;
      if (input != "-") {
        file.open(input);
        GRANITE_CHECK(file.good(), input, ": cannot open the requests");
      }
      std::istream& in = input == "-" ? std::cin : file;
      // Up to --batch-size requests are read, generated together and answered, in order.
      std::vector<Request> pending;
      std::vector<int64_t> lines;
      const auto flush = [&] {
        const auto answers = g.answer_all(pending);
        for (size_t k = 0; k < answers.size(); ++k) {
          granite::Json out = answers[k];
          out["line"] = lines[k];
          std::cout << out.dump() << "\n";
        }
        std::cout << std::flush;
        pending.clear();
        lines.clear();
      };
      std::string line;
      for (int64_t n = 1; std::getline(in, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = (input == "-" ? std::string("<stdin>") : input) + ":" + std::to_string(n);
        const granite::Json j = granite::Json::parse(line, nullptr, /*allow_exceptions=*/false);
        GRANITE_CHECK(!j.is_discarded(), where, ": not valid JSON");
        pending.push_back(request_from_json(j, where));
        lines.push_back(n);
        if (int64_t(pending.size()) == batch_size) flush();
      }
      if (!pending.empty()) flush();
      return 0;
    }
    Request r;
    r.chat = chat;
    if (fim) {
      r.fim = true;
      r.prefix = prefix;
      r.suffix = suffix;
    } else if (ids_opt->count()) {
      r.ids = granite::cli::parse_ids(prompt_ids, "--prompt-ids");
      r.has_ids = true;
    } else if (file_opt->count()) {
      std::ifstream file(prompt_file, std::ios::binary);
      GRANITE_CHECK(prompt_file == "-" || file.good(), prompt_file, ": cannot open the prompt file");
      r.text = prompt_file == "-" ? read_all(std::cin) : read_all(file);
    } else {
      r.text = prompt_text;
    }
    if (format == "text") {
      g.stream(r);
    } else {
      std::cout << g.answer(r).dump() << "\n";
    }
    return 0;
  }, granite::cli::describe_torch_error);
}
