// HF model directories: save -> load round trips (single file, sharded + index, bf16), refusal to clobber, and the
// bad inputs a user meets: no weights, no config, a truncated or lying safetensors file, wrong shapes, missing or
// unexpected tensors, a broken shard index.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "granite/core/check.h"
#include "granite/core/json.h"
#include "granite/config/hf_config.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "support/tensor_match.h"

using Catch::Matchers::Contains;
using granite::test::scratch_dir;
using granite::test::source_path;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return source_path("tests/fixtures/hf/" + name); }

// A writable copy of a fixture model directory.
std::string copy_fixture(const std::string& name, const std::string& scratch) {
  auto dir = scratch_dir(scratch) + "/model";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fixture(name) + "/" + f, dir + "/" + f);
  return dir;
}

torch::Tensor logits_of(const granite::CausalLM& model) {
  torch::NoGradGuard no_grad;
  return model->forward(torch::arange(1, 12).unsqueeze(0));
}

void rewrite_weights(const std::string& dir,
                     const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit) {
  auto all = granite::load_safetensors(dir + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> v(all.begin(), all.end());
  edit(v);
  granite::save_safetensors(dir + "/model.safetensors", v);
}

}  // namespace

TEST_CASE("save_pretrained -> load_pretrained gives identical logits, single file and sharded", "[io][pretrained]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    auto model = granite::load_pretrained(fixture(name));
    auto ref = logits_of(model);
    auto root = scratch_dir(std::string("roundtrip_") + name);

    granite::save_pretrained(*model, root + "/single");
    REQUIRE(fs::exists(root + "/single/model.safetensors"));
    REQUIRE_FALSE(fs::exists(root + "/single/model.safetensors.index.json"));
    REQUIRE_CLOSE(logits_of(granite::load_pretrained(root + "/single")), ref, 0.0);

    granite::SaveOptions sharded;
    sharded.max_shard_bytes = 100000;  // forces several shards
    granite::save_pretrained(*model, root + "/sharded", sharded);
    auto index = granite::read_json_file(root + "/sharded/model.safetensors.index.json");
    std::set<std::string> files;
    for (auto& f : index["weight_map"]) files.insert(f.get<std::string>());
    REQUIRE(files.size() > 1);
    REQUIRE(index["weight_map"].size() == model->named_parameters().size());
    REQUIRE_CLOSE(logits_of(granite::load_pretrained(root + "/sharded")), ref, 0.0);

    granite::SaveOptions bf16;
    bf16.dtype = torch::kBFloat16;
    granite::save_pretrained(*model, root + "/bf16", bf16);
    auto file = granite::SafetensorsFile::open(root + "/bf16/model.safetensors");
    for (const auto& key : file->keys()) REQUIRE(file->entry(key).dtype == torch::kBFloat16);
    REQUIRE(granite::load_hf_config(root + "/bf16/config.json").torch_dtype == "bfloat16");
    REQUIRE_CLOSE(logits_of(granite::load_pretrained(root + "/bf16")), ref, 0.5);  // bf16 weights, fp32 compute
  }
}

TEST_CASE("tied checkpoints omit lm_head.weight, as transformers saves them", "[io][pretrained]") {
  auto model = granite::load_pretrained(fixture("llama_mha_bias_tied"));
  auto dir = scratch_dir("tied") + "/out";
  granite::save_pretrained(*model, dir);
  auto file = granite::SafetensorsFile::open(dir + "/model.safetensors");
  REQUIRE_FALSE(file->contains("lm_head.weight"));
  // and the key set is exactly the one transformers wrote
  auto hf = granite::SafetensorsFile::open(fixture("llama_mha_bias_tied") + "/model.safetensors");
  REQUIRE(file->keys() == hf->keys());
}

TEST_CASE("save_pretrained never clobbers a non-empty directory unless asked", "[io][pretrained]") {
  auto model = granite::load_pretrained(fixture("bigcode_mqa"));
  auto dir = scratch_dir("clobber") + "/out";
  fs::create_directories(dir);
  { std::ofstream(dir + "/notes.txt") << "mine"; }
  REQUIRE_THROWS_WITH(granite::save_pretrained(*model, dir), Contains("not empty"));
  REQUIRE(fs::exists(dir + "/notes.txt"));
  REQUIRE_FALSE(fs::exists(dir + "/model.safetensors"));
  for (const auto& e : fs::directory_iterator(fs::path(dir).parent_path())) {
    REQUIRE(e.path().filename().string().find(".tmp-") == std::string::npos);  // no temporary left behind
  }
  granite::SaveOptions replace;
  replace.overwrite = true;
  granite::save_pretrained(*model, dir, replace);
  REQUIRE_FALSE(fs::exists(dir + "/notes.txt"));
  REQUIRE_CLOSE(logits_of(granite::load_pretrained(dir)), logits_of(model), 0.0);
}

TEST_CASE("bad model directories give errors that name the file, tensor and values", "[io][pretrained][errors]") {
  SECTION("no weights") {
    auto dir = copy_fixture("bigcode_mqa", "bad_noweights");
    fs::remove(dir + "/model.safetensors");
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains(dir) && Contains("no model weights"));
  }
  SECTION("no config.json") {
    auto dir = copy_fixture("bigcode_mqa", "bad_noconfig");
    fs::remove(dir + "/config.json");
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("no config.json"));
  }
  SECTION("not a directory") {
    REQUIRE_THROWS_WITH(granite::load_pretrained("/nonexistent/granite"), Contains("not a directory"));
  }
  SECTION("config with an unknown key") {
    auto dir = copy_fixture("llama_mha_bias_tied", "bad_configkey");
    auto cfg = granite::read_json_file(dir + "/config.json");
    cfg["num_hiden_layers"] = 2;
    std::ofstream(dir + "/config.json") << cfg.dump();
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir),
                        Contains("config.json") && Contains("unknown key(s) 'num_hiden_layers'"));
  }
  SECTION("config missing a key") {
    auto dir = copy_fixture("llama_mha_bias_tied", "bad_configmissing");
    auto cfg = granite::read_json_file(dir + "/config.json");
    cfg.erase("hidden_size");
    std::ofstream(dir + "/config.json") << cfg.dump();
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("missing required key 'hidden_size'"));
  }
  SECTION("truncated safetensors") {
    auto dir = copy_fixture("llama_mha_bias_tied", "bad_truncated");
    fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") - 100);
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("model.safetensors"));
  }
  SECTION("header that lies about offsets") {
    auto dir = copy_fixture("llama_mha_bias_tied", "bad_offsets");
    std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    std::string header(n, ' ');
    f.read(header.data(), std::streamsize(n));
    auto pos = header.find("\"data_offsets\":[0,");
    REQUIRE(pos != std::string::npos);
    header.replace(pos, 18, "\"data_offsets\":[4,");  // same length: the first tensor now starts 4 bytes late
    f.seekp(8);
    f.write(header.data(), std::streamsize(n));
    f.close();
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("model.safetensors"));
  }
  SECTION("a tensor with the wrong shape for the config") {
    auto dir = copy_fixture("llama_mha_bias_tied", "bad_shape");
    rewrite_weights(dir, [](auto& v) {
      for (auto& [k, t] : v)
        if (k == "model.layers.1.mlp.up_proj.weight") t = t.narrow(0, 0, 95).contiguous();
    });
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("'model.layers.1.mlp.up_proj.weight'") &&
                                                           Contains("[95, 64]") && Contains("[96, 64]"));
  }
  SECTION("a missing tensor") {
    auto dir = copy_fixture("bigcode_mqa", "bad_missing");
    rewrite_weights(dir, [](auto& v) {
      v.erase(std::remove_if(v.begin(), v.end(), [](auto& p) { return p.first == "transformer.ln_f.bias"; }),
              v.end());
    });
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("missing 1 tensor(s)") &&
                                                           Contains("'transformer.ln_f.bias'"));
  }
  SECTION("an unexpected tensor (checkpoint deeper than the config)") {
    auto dir = copy_fixture("bigcode_mqa", "bad_unexpected");
    rewrite_weights(dir, [](auto& v) { v.emplace_back("transformer.h.2.ln_1.bias", torch::zeros({64})); });
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("unexpected tensor 'transformer.h.2.ln_1.bias'"));
  }
  SECTION("a shard index naming a missing file") {
    auto model = granite::load_pretrained(fixture("bigcode_mqa"));
    auto dir = scratch_dir("bad_index") + "/model";
    granite::SaveOptions sharded;
    sharded.max_shard_bytes = 100000;
    granite::save_pretrained(*model, dir, sharded);
    fs::remove(dir + "/model-00002-of-" + [&] {
      auto idx = granite::read_json_file(dir + "/model.safetensors.index.json");
      std::set<std::string> files;
      for (auto& f : idx["weight_map"]) files.insert(f.get<std::string>());
      char buf[8];
      std::snprintf(buf, sizeof buf, "%05zu", files.size());
      return std::string(buf) + ".safetensors";
    }());
    REQUIRE_THROWS_WITH(granite::load_pretrained(dir), Contains("model-00002-of-"));
  }
}
