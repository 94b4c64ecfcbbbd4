// ModelConfig: strict JSON round trip, HF import (transformers 4.x and 5.x forms), validation messages, and the
// parameter counts of the published models against the paper.
#include <catch2/catch.hpp>

#include <filesystem>

#include "granite/config/hf_config.h"
#include "granite/config/model_config.h"
#include "granite/core/check.h"
#include "granite/models/factory.h"
#include "support/tensor_match.h"

using granite::Json;
using granite::test::source_path;
namespace fs = std::filesystem;

namespace {
const char* kPublished[] = {"granite-3b-code-base-2k",  "granite-3b-code-base-128k", "granite-8b-code-base-4k",
                            "granite-8b-code-base-128k", "granite-20b-code-base-8k", "granite-34b-code-base-8k"};

granite::ModelConfig published(const std::string& name) {
  return granite::load_model_config(source_path("configs/models/" + name + ".json"));
}
Json tiny_json() { return granite::read_json_file(source_path("configs/models/tiny-llama.json")); }
}  // namespace

TEST_CASE("every shipped model config parses, validates and round-trips through JSON", "[config]") {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(source_path("configs/models"))) {
    INFO(entry.path().string());
    auto cfg = granite::load_model_config(entry.path().string());
    auto again = granite::model_config_from_json(granite::to_json(cfg), "round trip");
    REQUIRE(again == cfg);
    auto via_hf = granite::model_config_from_hf(granite::to_hf_json(cfg), "to_hf_json");
    REQUIRE(via_hf == cfg);
    ++n;
  }
  REQUIRE(n >= 8);
}

TEST_CASE("shipped configs equal the import of the published HF config.json files", "[config]") {
  for (const char* name : kPublished) {
    INFO(name);
    auto from_hf = granite::load_hf_config(source_path(std::string("tests/fixtures/hf_configs/") + name +
                                                       ".config.json"));
    REQUIRE(from_hf == published(name));
  }
}

TEST_CASE("published Granite Code architectures have the paper's shapes", "[config]") {
  auto c3 = published("granite-3b-code-base-2k");
  CHECK(c3.resolved_head_dim() == 80);
  CHECK(c3.num_key_value_heads == c3.num_attention_heads);
  auto c8 = published("granite-8b-code-base-4k");
  CHECK(c8.resolved_head_dim() == 128);
  CHECK(c8.num_key_value_heads == 8);
  CHECK(published("granite-8b-code-base-128k").rope_theta == 1e7);
  auto c20 = published("granite-20b-code-base-8k");
  CHECK(c20.architecture == granite::Architecture::GPTBigCode);
  CHECK(c20.num_key_value_heads == 1);
  CHECK(c20.hidden_size + 2 * c20.resolved_head_dim() == 6400);  // fused MQA c_attn rows (Ollama GGUF: 6400)
  CHECK(published("granite-34b-code-base-8k").num_hidden_layers == 88);
}

TEST_CASE("parameter counts match the paper without allocating the models", "[config]") {
  // Paper / leaderboard: 3B ~3.48B, 8B ~8.05B, 20B ~20.07B, 34B ~33.7B (tied embeddings, biases included).
  struct Expect { const char* name; double billions; };
  for (auto e : {Expect{"granite-3b-code-base-2k", 3.48}, Expect{"granite-8b-code-base-4k", 8.05},
                 Expect{"granite-20b-code-base-8k", 20.07}, Expect{"granite-34b-code-base-8k", 33.7}}) {
    INFO(e.name);
    double got = double(granite::count_parameters(published(e.name))) / 1e9;
    CHECK(got == Approx(e.billions).epsilon(0.005));
  }
}

TEST_CASE("count_parameters equals the parameters make_model allocates", "[config]") {
  for (const char* name : {"tiny-llama", "tiny-gpt-bigcode"}) {
    for (bool tie : {true, false}) {
      auto cfg = published(name);
      cfg.vocab_size = 300;  // keep the allocation small
      cfg.tie_word_embeddings = tie;
      auto model = granite::make_model(cfg);
      int64_t numel = 0;
      for (const auto& p : model->parameters()) numel += p.numel();
      INFO(name << " tie=" << tie);
      REQUIRE(granite::count_parameters(cfg) == numel);
    }
  }
}

TEST_CASE("HF config.json in the transformers 5.x form imports (rope_parameters, dtype, head_dim)", "[config]") {
  auto gqa = granite::load_hf_config(source_path("tests/fixtures/hf/llama_gqa_bias_untied_theta1e7/config.json"));
  CHECK(gqa.rope_theta == 1e7);
  CHECK(gqa.num_key_value_heads == 2);
  CHECK_FALSE(gqa.tie_word_embeddings);
  CHECK(gqa.torch_dtype == "float32");
  auto mqa = granite::load_hf_config(source_path("tests/fixtures/hf/llama_mqa_nobias_headdim/config.json"));
  CHECK(mqa.resolved_head_dim() == 24);
  CHECK(mqa.head_dim == 24);
  auto mha = granite::load_hf_config(source_path("tests/fixtures/hf/bigcode_mha/config.json"));
  CHECK(mha.num_key_value_heads == 4);
  CHECK(mha.architecture == granite::Architecture::GPTBigCode);
}

TEST_CASE("config errors name the key and the offending value", "[config][errors]") {
  using Catch::Matchers::Contains;
  SECTION("unknown key") {
    auto j = tiny_json();
    j["hidden_sise"] = 64;
    REQUIRE_THROWS_WITH(granite::model_config_from_json(j, "x.json"),
                        Contains("x.json") && Contains("unknown key(s) 'hidden_sise'"));
  }
  SECTION("missing key") {
    auto j = tiny_json();
    j.erase("num_hidden_layers");
    REQUIRE_THROWS_WITH(granite::model_config_from_json(j, "x.json"),
                        Contains("missing required key 'num_hidden_layers'"));
  }
  SECTION("wrong type") {
    auto j = tiny_json();
    j["hidden_size"] = "64";
    REQUIRE_THROWS_WITH(granite::model_config_from_json(j, "x.json"),
                        Contains("'hidden_size' must be an integer, got \"64\""));
  }
  SECTION("heads not divisible") {
    auto j = tiny_json();
    j["num_attention_heads"] = 32;
    j["hidden_size"] = 64 * 32;
    j["num_key_value_heads"] = 6;
    REQUIRE_THROWS_WITH(granite::model_config_from_json(j, "x.json"),
                        Contains("num_attention_heads (32) must be divisible by num_key_value_heads (6)"));
  }
  SECTION("HF: unknown key, rope_scaling, model_type, pretraining_tp") {
    auto hf = granite::read_json_file(source_path("tests/fixtures/hf_configs/granite-8b-code-base-4k.config.json"));
    auto bad = hf;
    bad["sliding_window"] = 4096;
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(bad, "config.json"), Contains("'sliding_window'"));
    bad = hf;
    bad["rope_scaling"] = Json{{"type", "linear"}, {"factor", 2.0}};
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(bad, "config.json"), Contains("rope_scaling"));
    bad = hf;
    bad["model_type"] = "mistral";
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(bad, "config.json"), Contains("\"mistral\""));
    bad = hf;
    bad["pretraining_tp"] = 2;
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(bad, "config.json"), Contains("pretraining_tp (2)"));
    bad = hf;
    bad["hidden_act"] = "gelu";
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(bad, "config.json"), Contains("hidden_act (\"gelu\")"));
  }
  SECTION("HF: GPTBigCode num_key_value_heads contradicting multi_query") {
    auto hf = granite::read_json_file(source_path("tests/fixtures/hf/bigcode_mqa/config.json"));
    hf["num_key_value_heads"] = 4;
    REQUIRE_THROWS_WITH(granite::model_config_from_hf(hf, "config.json"), Contains("contradicts multi_query"));
  }
}
