// granite-convert: re-save a Hugging Face model directory: cast (--dtype), reshard (--max-shard-size), or build a
// depth-upscaled model (--depth-upscale N, the Granite-34B recipe: 2 copies, drop N layers at the seam).
// --model may also be a fully sharded run's checkpoint (state-*-of-*.safetensors): its shards are consolidated
// into a plain model directory (in the run's compute dtype unless --dtype says otherwise).
// Tokenizer files in the source directory are carried over. The output loads in transformers and granite alike.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "cli.h"
#include "granite/config/hf_config.h"
#include "granite/io/pretrained.h"
#include "granite/models/depth_upscale.h"
#include "granite/train/checkpoint.h"

int main(int argc, char** argv) {
  CLI::App app{"Re-save a Granite model directory (cast, reshard, depth-upscale)."};
  std::string src, dst, dtype, max_shard = "5GB";
  int64_t upscale_drop = -1;
  bool overwrite = false;
  app.add_option("--model", src, "source model directory, or a checkpoint of a fully sharded run")->required();
  app.add_option("--output", dst, "output model directory (must not exist or be empty, unless --overwrite)")
      ->required();
  app.add_option("--dtype", dtype, "storage dtype: float32 | bfloat16 | float16 (default: the source's)");
  app.add_option("--max-shard-size", max_shard, "largest safetensors shard, e.g. 5GB, 200MB")->capture_default_str();
  app.add_option("--depth-upscale", upscale_drop,
                 "build a 2*(L-N)-layer model: copy 1 without its last N layers + copy 2 without its first N");
  app.add_flag("--overwrite", overwrite, "replace a non-empty output directory");
  CLI11_PARSE(app, argc, argv);

  return granite::cli::guarded_main("granite-convert", [&] {
    namespace fs = std::filesystem;
    auto cfg = granite::load_hf_config((fs::path(src) / "config.json").string());
    const c10::ScalarType storage =
        granite::cli::parse_dtype(dtype.empty() ? cfg.torch_dtype : dtype);
    granite::LoadOptions load;
    load.dtype = storage;
    auto model = granite::load_model_or_checkpoint(src, load);
    if (upscale_drop >= 0) model = granite::depth_upscale(*model, upscale_drop);

    granite::SaveOptions save;
    save.max_shard_bytes = granite::cli::parse_bytes(max_shard, "--max-shard-size");
    save.overwrite = overwrite;
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                             "merges.txt", "generation_config.json"}) {
      if (fs::is_regular_file(fs::path(src) / name)) save.copy_files.push_back((fs::path(src) / name).string());
    }
    granite::save_pretrained(*model, dst, save);
    const auto& out = model->config();
    std::cout << "wrote " << dst << ": " << granite::to_string(out.architecture) << ", " << out.num_hidden_layers
              << " layers, " << granite::count_parameters(out) << " parameters\n";
    return 0;
  }, granite::cli::describe_torch_error);
}
