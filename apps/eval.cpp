// granite-eval: measure a model the way the Granite Code paper did.
//   granite-eval --task humaneval --model DIR                      greedy pass@1 (completion prompts)
//   granite-eval --task humaneval --model DIR --samples 20 --temperature 0.2 --top-p 0.95     pass@1, pass@10
//   granite-eval --task mbpp --model DIR --prompt-format instruct   an instruct model through its chat template
//   granite-eval --task humaneval-infilling --set multi-line --model DIR                        FIM
//   granite-eval --task humaneval --reference                      the datasets' own solutions: checks the harness
//   granite-eval --task perplexity --model DIR --data SHARDS       validation loss / perplexity over token shards
// Every program runs in a sandbox (granite/eval/sandbox.h). Per-problem results go to --output as JSONL; the last
// line on stdout is one JSON summary: task, passed, total, pass@k, samples, and the isolation that held.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "granite/core/atomic_file.h"
#include "granite/core/json.h"
#include "granite/core/progress.h"
#include "granite/eval/code_eval.h"
#include "granite/eval/code_generation.h"
#include "granite/eval/perplexity.h"
#include "granite/io/pretrained.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/train/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The shipped datasets: $GRANITE_EVAL_DATA, else the source tree's data/eval (a build tree), else the installed copy.
std::string eval_data_dir() {
  if (const char* env = std::getenv("GRANITE_EVAL_DATA")) return env;
  for (const char* dir : {GRANITE_SOURCE_EVAL_DATA, GRANITE_INSTALLED_EVAL_DATA})
    if (fs::exists(fs::path(dir) / "HumanEval.jsonl.gz")) return dir;
  GRANITE_FAIL("the shipped evaluation datasets are in neither ", GRANITE_SOURCE_EVAL_DATA, " nor ",
               GRANITE_INSTALLED_EVAL_DATA, "; pass --data FILE or set GRANITE_EVAL_DATA");
}

struct Flags {
  std::string task, data, set = "single-line", split = "test", model_dir, output, prompt_format = "completion";
  std::string device = "cpu", dtype, memory = "2GB";
  bool reference = false, spm = false;
  int64_t samples = 1, max_new_tokens = 512, batch_size = 8, limit = 0, top_k = 0, seq_len = 0, max_tokens = 0;
  double temperature = 0, top_p = 1.0, timeout = 10;
  uint64_t seed = 0;
  int jobs = 0;
};

void write_output(const std::string& path, const std::vector<granite::Json>& lines) {
  if (path.empty()) return;
  std::string text;
  for (const granite::Json& j : lines) text += j.dump() + "\n";
  granite::write_file_atomic(path, text);
}

int run_perplexity(const Flags& f, const granite::LoadOptions& load) {
  GRANITE_CHECK(!f.reference, "--reference has no meaning for --task perplexity");
  GRANITE_CHECK(!f.model_dir.empty(), "--task perplexity needs --model DIR");
  GRANITE_CHECK(!f.data.empty(), "--task perplexity needs --data: a directory of token shards or a shard prefix "
                                  "(granite-data prepare's output)");
  granite::CausalLM model = granite::load_model_or_checkpoint(f.model_dir, load);
  model->pack_for_inference();
  granite::TokenStream stream({f.data}, /*seed=*/0, /*shuffle=*/false);
  granite::PerplexityOptions o;
  const auto& cfg = model->config();
  o.seq_len = f.seq_len > 0 ? f.seq_len : std::min<int64_t>(2048, cfg.max_position_embeddings);
  o.batch_size = f.batch_size;
  o.max_tokens = f.max_tokens;
  granite::ProgressLine progress;
  const auto start = Clock::now();
  const granite::PerplexityResult r = granite::evaluate_perplexity(*model, stream, o, [&](int64_t done, int64_t total) {
    if (!progress.due()) return;
    const double s = seconds_since(start);
    progress.update("perplexity: " + granite::format_si(double(done)) + "/" + granite::format_si(double(total)) +
                    " tokens, " + granite::format_si(double(done) / s) + " tok/s, ETA " +
                    granite::format_duration(s * double(total - done) / double(done)));
  });
  progress.finish("perplexity: " + std::to_string(r.predicted) + " tokens scored in " +
                  granite::format_duration(seconds_since(start)));
  granite::Json summary{{"task", "perplexity"}, {"data", f.data},         {"seq_len", o.seq_len},
                        {"windows", r.windows}, {"tokens", r.predicted},  {"loss", r.loss()},
                        {"perplexity", r.perplexity()}, {"seconds", seconds_since(start)}};
  write_output(f.output, {summary});
  std::cout << summary.dump() << "\n";
  return 0;
}

int run_code_task(const Flags& f, const granite::LoadOptions& load) {
  const granite::CodeTask task = granite::code_task_from_name(f.task);
  GRANITE_CHECK(f.reference != !f.model_dir.empty(), "give exactly one of --model DIR or --reference");
  const std::string path = f.data.empty() ? granite::shipped_code_dataset(eval_data_dir(), task, f.set) : f.data;
  std::vector<granite::CodeProblem> problems = granite::load_code_problems(task, path, f.split);
  if (f.limit > 0 && f.limit < int64_t(problems.size())) problems.resize(size_t(f.limit));
  const auto start = Clock::now();
  granite::ProgressLine progress;

  std::vector<std::vector<std::string>> completions;
  if (f.reference) {
    for (const auto& p : problems) completions.push_back({p.reference});
  } else {
    GRANITE_CHECK(f.samples >= 1, "--samples (", f.samples, ") must be >= 1");
    GRANITE_CHECK(f.temperature >= 0, "--temperature (", f.temperature, ") must be >= 0 (0 = greedy)");
    GRANITE_CHECK(f.samples == 1 || f.temperature > 0, "--samples ", f.samples,
                  " needs sampling: give --temperature > 0 (the paper's pass@k setting: 0.2 with --top-p 0.95)");
    granite::CausalLM model = granite::load_model_or_checkpoint(f.model_dir, load);
    model->pack_for_inference();
    const auto tokenizer = granite::load_tokenizer(f.model_dir);
    granite::CodeGenerationOptions o;
    o.format = f.prompt_format == "instruct" ? granite::PromptFormat::Instruct : granite::PromptFormat::Completion;
    o.samples = f.samples;
    o.batch_size = f.batch_size;
    o.chat = granite::model_chat_template(f.model_dir);
    o.fim_layout = f.spm ? granite::FimLayout::kSpm : granite::FimLayout::kPsm;
    o.generation.max_new_tokens = f.max_new_tokens;
    o.generation.seed = f.seed;
    o.generation.sampling.greedy = f.temperature == 0;
    o.generation.sampling.temperature = f.temperature > 0 ? f.temperature : 1.0;
    o.generation.sampling.top_k = f.top_k;
    o.generation.sampling.top_p = f.top_p;
    completions = granite::generate_completions(
        *model, *tokenizer, task, problems, o, [&](int64_t done, int64_t total, int64_t tokens) {
          if (!progress.due()) return;
          const double s = seconds_since(start);
          progress.update("generating: " + std::to_string(done) + "/" + std::to_string(total) + " sequences, " +
                          granite::format_si(double(tokens) / s) + " tok/s, ETA " +
                          granite::format_duration(s * double(total - done) / double(done)));
        });
    progress.finish("generated " + std::to_string(int64_t(problems.size()) * f.samples) + " completions in " +
                    granite::format_duration(seconds_since(start)));
  }

  granite::CodeEvalOptions eval;
  eval.jobs = f.jobs;
  eval.base_uid = granite::default_sandbox_base_uid();
  eval.sandbox.limits.timeout_s = f.timeout;
  eval.sandbox.limits.memory_bytes = granite::cli::parse_bytes(f.memory, "--memory");
  const auto run_start = Clock::now();
  const auto results = granite::check_completions(task, problems, completions, eval, [&](int64_t done, int64_t total) {
    if (progress.due())
      progress.update("running programs: " + std::to_string(done) + "/" + std::to_string(total));
  });
  const granite::CodeEvalSummary s = granite::summarize(results);
  progress.finish("ran " + std::to_string(results.size() * size_t(f.samples)) + " programs in " +
                  granite::format_duration(seconds_since(run_start)));

  std::vector<granite::Json> lines;
  for (const auto& r : results) lines.push_back(granite::to_json(r));
  write_output(f.output, lines);
  granite::Json summary{{"task", f.task},
                        {"data", path},
                        {"model", f.reference ? granite::Json("reference") : granite::Json(f.model_dir)},
                        {"passed", s.passed},
                        {"total", s.total},
                        {"samples", f.reference ? 1 : f.samples}};
  for (const auto& [k, v] : s.pass_at) summary["pass@" + std::to_string(k)] = v;
  summary["isolation"] = {{"network", s.network_isolated},
                          {"filesystem", s.filesystem_isolated},
                          {"own_uid", s.uid_dropped}};
  if (s.uid_dropped) summary["isolation"]["uids"] = {eval.base_uid, eval.base_uid + eval.uid_count - 1};
  summary["seconds"] = seconds_since(start);
  std::cout << summary.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a Granite Code model: HumanEval / MBPP pass@k, HumanEval infilling, perplexity."};
  Flags f;
  app.add_option("--task", f.task, "humaneval | mbpp | humaneval-infilling | perplexity")
      ->required()
      ->check(CLI::IsMember({"humaneval", "mbpp", "humaneval-infilling", "perplexity"}));
  app.add_option("--data", f.data,
                 "the dataset (.jsonl or .jsonl.gz; default: the copy shipped with granite), or for perplexity the "
                 "token shards (a directory or a shard prefix)");
  app.add_option("--set", f.set, "humaneval-infilling: single-line | multi-line | random-span | random-span-light")
      ->capture_default_str();
  app.add_option("--split", f.split, "mbpp: test (11-510) | validation | train | prompt | all")->capture_default_str();
  auto* model_opt = app.add_option("--model", f.model_dir, "model directory (config.json + safetensors + tokenizer)");
  app.add_flag("--reference", f.reference, "run the datasets' own solutions instead of a model's")
      ->excludes(model_opt);
  app.add_option("--prompt-format", f.prompt_format,
                 "completion (base models) | instruct (the task as a user turn of the chat template)")
      ->check(CLI::IsMember({"completion", "instruct"}))
      ->capture_default_str();
  app.add_flag("--spm", f.spm, "infilling prompts in the SPM layout (default PSM)");
  app.add_option("--samples", f.samples, "completions per problem (pass@k for k <= samples)")->capture_default_str();
  app.add_option("--temperature", f.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-p", f.top_p, "nucleus sampling mass")->capture_default_str();
  app.add_option("--top-k", f.top_k, "0 = off")->capture_default_str();
  app.add_option("--seed", f.seed, "sampling seed")->capture_default_str();
  app.add_option("--max-new-tokens", f.max_new_tokens, "tokens per completion")->capture_default_str();
  app.add_option("--batch-size", f.batch_size, "sequences generated (or perplexity windows scored) at once")
      ->capture_default_str();
  app.add_option("--limit", f.limit, "only the first N problems (0 = all)")->capture_default_str();
  app.add_option("--jobs", f.jobs, "programs run at once (0 = one per CPU)")->capture_default_str();
  app.add_option("--timeout", f.timeout, "seconds each program may run")->capture_default_str();
  app.add_option("--memory", f.memory, "address-space limit of each program")->capture_default_str();
  app.add_option("--seq-len", f.seq_len, "perplexity window (0 = min(2048, the model's positions))");
  app.add_option("--max-tokens", f.max_tokens, "perplexity: score only the first N tokens (0 = all)");
  app.add_option("--output", f.output, "per-problem results as JSONL (written atomically)");
  app.add_option("--device", f.device, "cpu, cuda, cuda:N")->capture_default_str();
  app.add_option("--dtype", f.dtype, "float32 | bfloat16 | float16 (default: float32 on CPU, the checkpoint's on GPU)");
  CLI11_PARSE(app, argc, argv);

  return granite::cli::guarded_main("granite-eval", [&] {
    granite::LoadOptions load;
    load.device = granite::cli::parse_device(f.device);
    if (!f.dtype.empty()) load.dtype = granite::cli::parse_dtype(f.dtype);
    if (f.task == "perplexity") return run_perplexity(f, load);
    return run_code_task(f, load);
  }, granite::cli::describe_torch_error);
}
