// granite-sft: instruction tuning (Granite Code's recipe: configs/train/*-sft.json) from a JSON config, resumable,
// on CPU or GPUs.
//   granite-sft --config configs/train/tiny-sft.json [--model DIR] [--data FILE ...] [--output-dir DIR]
//               [--max-steps N] [--save-every N] [--seed N] [--resume auto|never|PATH] [--set key=value ...]
// The config is a training config (granite/train/train_config.h) whose "data" section names instruction datasets
// (granite/instruct/instruct_loader.h) and whose optional "template" section is the chat template
// (granite/instruct/chat_template.h; default: Granite's). Checkpoints are HF model directories whose
// tokenizer_config.json carries the chat template, loadable by granite-generate --chat and transformers.
// Without --max-steps, data.epochs (when set) decides the number of steps; train.neftune_alpha defaults to 5 (the
// paper's NEFTune). Data parallel when started by granite-launch, torchrun or srun, as granite-pretrain.
#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>

#include "cli.h"
#include "run_flags.h"
#include "granite/core/atomic_file.h"
#include "granite/core/file_status.h"
#include "granite/instruct/instruct_loader.h"
#include "granite/tokenizer/tokenizer.h"

namespace {

// tokenizer_config.json for the checkpoints: the tokenizer directory's own (when there is one) with the chat template
// and the special tokens transformers needs to stop at EOS.
granite::Json tokenizer_config(const std::string& tokenizer_path, const granite::ChatTemplate& tmpl,
                               const granite::Tokenizer& tokenizer) {
  namespace fs = std::filesystem;
  const fs::path beside = fs::path(tokenizer_path).parent_path() / "tokenizer_config.json";
  granite::Json j = fs::exists(beside) ? granite::read_json_file(beside.string()) : granite::Json::object();
  j["chat_template"] = granite::jinja_chat_template(tmpl);
  if (const auto eos = tokenizer.special_tokens().eos) {
    const std::string name = tokenizer.id_to_token(*eos);
    for (const char* key : {"eos_token", "bos_token", "pad_token"})
      if (!j.contains(key)) j[key] = name;
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Instruction-tune a Granite Code model (answer-only loss, packing, NEFTune)."};
  std::string config, model;
  std::vector<std::string> data;
  granite::cli::RunFlags flags;
  app.add_option("--config", config, "instruction-tuning config (JSON)")->required();
  app.add_option("--model", model, "starting weights: a model directory or a checkpoint (replaces model/init_from)");
  app.add_option("--data", data, "an instruction dataset, .jsonl or .json (repeatable; replaces data.datasets)");
  flags.add_to(app);
  CLI11_PARSE(app, argc, argv);
  return granite::cli::guarded_main("granite-sft", [&] {
    namespace fs = std::filesystem;
    granite::Json j = granite::read_json_file(config);
    // NEFTune is part of the recipe: alpha 5 unless the config (or --set) says otherwise.
    if (!j.contains("train") || !j["train"].contains("neftune_alpha")) j["train"]["neftune_alpha"] = 5.0;
    for (const std::string& s : flags.overrides()) granite::apply_override(j, s);
    // Command-line paths are relative to the working directory, config paths to the config's directory.
    if (!model.empty()) {
      j.erase("model");
      j["init_from"] = fs::absolute(model).string();
    }
    if (!data.empty()) {
      granite::Json datasets = granite::Json::array();
      for (const std::string& d : data) datasets.push_back({{"path", fs::absolute(d).string()}});
      j["data"]["datasets"] = datasets;
    }
    const std::string base = fs::path(config).parent_path().empty() ? "." : fs::path(config).parent_path().string();
    granite::TrainConfig cfg = granite::train_config_from_json(j, config, base, {"data", "template"});
    if (!flags.output_dir.empty()) cfg.output_dir = flags.output_dir;
    granite::Json data_json = cfg.app_sections.value("data", granite::Json());
    GRANITE_CHECK(data_json.is_object(), config, ": missing the \"data\" section (instruction datasets)");
    const auto epochs_it = data_json.find("epochs");
    const double epochs = epochs_it == data_json.end() ? 0.0 : epochs_it->get<double>();
    data_json.erase("epochs");
    const granite::InstructDataConfig sft = granite::instruct_data_config_from_json(data_json, config + ": data", base);
    const granite::ChatTemplate tmpl =
        cfg.app_sections.contains("template")
            ? granite::chat_template_from_json(cfg.app_sections["template"], config + ": template")
            : granite::ChatTemplate{};
    cfg.data.seq_len = sft.seq_len;  // for the FLOPs per token
    cfg.data.micro_batch = sft.micro_batch;
    // A model directory's own tokenizer wins over the config's.
    if (!cfg.init_from.empty() && fs::exists(fs::path(cfg.init_from) / "tokenizer.json"))
      cfg.tokenizer = (fs::path(cfg.init_from) / "tokenizer.json").string();
    const auto tokenizer = granite::load_tokenizer(cfg.tokenizer);

    const granite::LaunchEnv env = granite::launch_env();
    const auto comm = flags.communicator(env, cfg.device);
    const int world = comm ? comm->world_size() : 1;
    // Every dataset read, checked and tokenized once, before anything is written (a bad record stops the run
    // here); the epoch count, the training loader and the validation batches share the examples.
    const auto examples = std::make_shared<const granite::InstructExamples>(sft, tmpl, *tokenizer);
    const granite::InstructLoader probe(examples);  // checks that every dataset kept training examples
    if (epochs > 0 && flags.max_steps < 0) {  // steps from epochs over the packed training rows
      const double rows = double(probe.rows_per_epoch()) * epochs;
      cfg.steps = std::max<int64_t>(1, int64_t(std::ceil(rows / double(sft.micro_batch * cfg.grad_accum * world))));
    }
    if (cfg.schedule.decay_steps == 0)  // the decay runs to the last step
      cfg.schedule.decay_steps = std::max<int64_t>(1, cfg.steps - cfg.schedule.warmup_steps);
    granite::RunOptions options = flags.options(comm.get());
    options.data.train = [&](const granite::Json* state, int rank, int ranks) -> std::unique_ptr<granite::BatchSource> {
      const granite::InstructLoaderState s =
          state ? granite::instruct_loader_state_from_json(*state, "training_state.json: loader")
                : granite::InstructLoaderState{};
      auto loader = std::make_unique<granite::InstructLoader>(examples, granite::InstructSplit::kTrain, rank, ranks, s);
      if (loader->skipped() > 0 && env.rank == 0)
        std::fprintf(stderr, "granite-sft: %lld invalid or over-long records skipped (skip_invalid)\n",
                     static_cast<long long>(loader->skipped()));
      return loader;
    };
    std::vector<granite::PackedBatch> held_out;
    if (sft.eval_fraction > 0) {
      held_out = granite::InstructLoader(examples, granite::InstructSplit::kEval).all_batches();
      GRANITE_CHECK(!held_out.empty() || cfg.eval_every == 0, config, ": data.eval_fraction ", sft.eval_fraction,
                    " left no validation examples");
      options.data.eval = [&] { return held_out; };
    } else {
      GRANITE_CHECK(cfg.eval_every == 0, config, ": train.eval_every needs data.eval_fraction > 0 (a held-out split)");
    }
    // The checkpoints' tokenizer_config.json, with the chat template.
    if (env.rank == 0) granite::make_directories(cfg.output_dir);
    // The checkpoints' tokenizer_config.json (the chat template for transformers) and granite_chat_template.json
    // (the same template as granite reads it: granite-generate --chat).
    const std::string tok_config = cfg.output_dir + "/tokenizer_config.json";
    const std::string chat_config = cfg.output_dir + "/" + granite::kChatTemplateFile;
    if (env.rank == 0) {
      granite::write_file_atomic(tok_config, tokenizer_config(cfg.tokenizer, tmpl, *tokenizer).dump(2) + "\n");
      granite::write_file_atomic(chat_config, granite::to_json(tmpl).dump(2) + "\n");
    }
    if (comm) comm->barrier("tokenizer config");
    options.checkpoint_files = {tok_config, chat_config};
    const granite::RunResult r = granite::run_training(cfg, options);
    if (env.rank == 0) std::printf("%s\n", granite::cli::run_summary(r).c_str());
    return 0;
  }, granite::cli::describe_torch_error);
}
