// granite-data: the pretraining data pipeline of the Granite Code paper (§2) as one command.
//   granite-data prepare --input DIR|ARCHIVE|FILE.jsonl [--input ...] --output DIR --tokenizer FILE
//                        [--config FILE] [--threads N] [--quiet]
// Walks the inputs in a deterministic order, identifies languages by extension (configs/data/languages.json),
// filters, removes exact (SHA-256) and near (MinHash/LSH, Jaccard >= 0.7) duplicates, redacts e-mail addresses, IP
// addresses and secret keys, and writes token shards (Megatron .bin/.idx, EOS after every document), report.json and
// dropped.jsonl into --output. Rerunning on an interrupted output directory resumes it (granite/data/prepare.h).
// The report is also printed on stdout as one JSON line. Errors name the file, line or key; the exit status is 1.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "cli_basic.h"
#include "granite/data/prepare.h"

int main(int argc, char** argv) {
  CLI::App app{"granite-data: raw code repositories -> filtered, deduplicated, tokenized shards"};
  app.require_subcommand(1);
  CLI::App* prepare = app.add_subcommand("prepare", "prepare pretraining shards from code and text");
  granite::PrepareOptions options;
  std::string config_path;
  bool quiet = false;
  prepare->add_option("--input", options.inputs,
                      "a directory of repositories, a .tar/.tar.gz archive, a .jsonl file of {\"text\": ...} "
                      "documents, or one file (repeatable; read in the order given)")
      ->required();
  prepare->add_option("--output", options.output, "output directory (created; resumed if interrupted)")->required();
  prepare->add_option("--tokenizer", options.tokenizer, "tokenizer.json, a sentencepiece .model, or a model directory")
      ->required();
  prepare->add_option("--config", config_path, "JSON settings (granite/data/prepare_config.h); defaults: the paper's");
  prepare->add_option("--threads", options.threads, "worker threads (0 = hardware concurrency)")->capture_default_str();
  prepare->add_flag("--quiet", quiet, "no progress lines on stderr");
  CLI11_PARSE(app, argc, argv);

  return granite::cli::guarded_main("granite-data", [&] {
    if (!config_path.empty()) options.config = granite::load_prepare_config(config_path);
    options.progress = !quiet;
    const granite::Json report = granite::prepare_dataset(options);
    std::cout << report.dump() << std::endl;
    return 0;
  });
}
