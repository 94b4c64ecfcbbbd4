// Depth up-scaling (paper §3): 20B (52 layers) -> 34B (88) by stacking two copies minus n_drop layers at the seam.
#include <catch2/catch.hpp>

#include "granite/config/model_config.h"
#include "granite/core/check.h"
#include "granite/io/pretrained.h"
#include "granite/models/depth_upscale.h"
#include "support/tensor_match.h"

using granite::test::source_path;

TEST_CASE("the 20B -> 34B layer map is the paper's 44 + 44", "[models][upscale]") {
  auto map = granite::depth_upscale_layer_map(52, 8);
  REQUIRE(map.size() == 88);
  CHECK(map[0] == 0);
  CHECK(map[43] == 43);  // first copy keeps layers 0..43 (drops 44..51)
  CHECK(map[44] == 8);   // second copy starts at its layer 8 (drops 0..7)
  CHECK(map[87] == 51);
  auto cfg20 = granite::load_model_config(source_path("configs/models/granite-20b-code-base-8k.json"));
  auto cfg34 = granite::load_model_config(source_path("configs/models/granite-34b-code-base-8k.json"));
  REQUIRE(granite::depth_upscaled_config(cfg20, 8) == cfg34);
  REQUIRE_THROWS_WITH(granite::depth_upscale_layer_map(4, 4), Catch::Contains("n_drop (4)"));
}

TEST_CASE("depth-upscaled tiny models carry the mapped weights, both families", "[models][upscale]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mha"}) {  // both have 3 layers
    INFO(name);
    auto src = granite::load_pretrained(source_path(std::string("tests/fixtures/hf/") + name));
    const int64_t L = src->config().num_hidden_layers;
    auto up = granite::depth_upscale(*src, 1);
    REQUIRE(up->config().num_hidden_layers == 2 * (L - 1));
    auto map = granite::depth_upscale_layer_map(L, 1);
    auto src_params = src->named_parameters();
    const std::string stack = src->config().architecture == granite::Architecture::Llama ? "model.layers."
                                                                                         : "transformer.h.";
    int64_t checked = 0;
    for (const auto& item : up->named_parameters()) {
      std::string key = item.key();
      if (key.rfind(stack, 0) == 0) {
        size_t dot = key.find('.', stack.size());
        int64_t layer = std::stoll(key.substr(stack.size(), dot - stack.size()));
        key = stack + std::to_string(map[layer]) + key.substr(dot);
      }
      INFO(item.key() << " <- " << key);
      REQUIRE(torch::equal(item.value(), src_params[key]));
      ++checked;
    }
    REQUIRE(checked == int64_t(up->named_parameters().size()));
    // the deeper model runs and keeps the output shape
    auto ids = torch::randint(1, 200, {1, 6});
    REQUIRE(up->forward(ids).sizes() == src->forward(ids).sizes());
  }
}
