// Sampling and the generation loop: determinism by seed, top-k/top-p semantics, the sampled distribution, stop ids,
// limits and input errors.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include "granite/core/check.h"
#include "granite/generate/generator.h"
#include "granite/io/pretrained.h"
#include "support/tensor_match.h"

using Catch::Matchers::Contains;
using granite::test::source_path;

namespace {
granite::CausalLM fixture_model(const std::string& name) {
  return granite::load_pretrained(source_path("tests/fixtures/hf/" + name));
}
}  // namespace

TEST_CASE("sampled tokens follow softmax(logits / T), top-k and top-p cut the tail", "[generate][sampler]") {
  auto logits = torch::tensor({2.0f, 1.0f, 0.0f, -1.0f});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
  const int N = 20000;
  for (double temperature : {1.0, 0.5}) {
    granite::SamplingOptions o;
    o.greedy = false;
    o.temperature = temperature;
    std::vector<int> counts(4, 0);
    for (int i = 0; i < N; ++i) counts[granite::sample_token(logits, o, gen)]++;
    auto p = torch::softmax(logits / temperature, 0);
    for (int k = 0; k < 4; ++k) {
      INFO("T=" << temperature << " token " << k);
      CHECK(counts[k] / double(N) == Approx(p[k].item<double>()).margin(0.015));
    }
  }
  granite::SamplingOptions top_k;
  top_k.greedy = false;
  top_k.top_k = 2;
  granite::SamplingOptions top_p;
  top_p.greedy = false;
  top_p.top_p = 0.8;  // softmax = [.64, .24, .09, .03]: {0, 1} reach 0.88 >= 0.8, so 2 and 3 are cut
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(granite::sample_token(logits, top_k, gen) < 2);
    REQUIRE(granite::sample_token(logits, top_p, gen) < 2);
  }
  granite::SamplingOptions one;
  one.greedy = false;
  one.top_k = 1;
  REQUIRE(granite::sample_token(logits, one, gen) == 0);
  granite::SamplingOptions bad;
  bad.greedy = false;
  bad.temperature = 0;
  REQUIRE_THROWS_WITH(granite::sample_token(logits, bad, gen), Contains("temperature (0)"));
}

TEST_CASE("sampled generation is reproducible by seed", "[generate]") {
  auto model = fixture_model("llama_mha_bias_tied");
  granite::GenerationOptions o;
  o.max_new_tokens = 12;
  o.sampling.greedy = false;
  o.sampling.temperature = 1.5;
  o.seed = 11;
  auto a = granite::generate(*model, {5, 17, 42}, o);
  auto b = granite::generate(*model, {5, 17, 42}, o);
  REQUIRE(a == b);
  REQUIRE(a.size() == 12);
  o.seed = 12;
  REQUIRE(granite::generate(*model, {5, 17, 42}, o) != a);
  // top_k = 1 sampling is greedy
  o.sampling.top_k = 1;
  granite::GenerationOptions g;
  g.max_new_tokens = 12;
  REQUIRE(granite::generate(*model, {5, 17, 42}, o) == granite::generate(*model, {5, 17, 42}, g));
}

TEST_CASE("generation stops at a stop id, which is returned, streaming sees every token", "[generate]") {
  auto model = fixture_model("bigcode_mqa");
  granite::GenerationOptions o;
  o.max_new_tokens = 10;
  auto all = granite::generate(*model, {3, 9, 27}, o);
  REQUIRE(all.size() == 10);
  o.stop_ids = {all[3]};
  std::vector<int64_t> streamed;
  auto cut = granite::generate(*model, {3, 9, 27}, o, [&](int64_t id) { streamed.push_back(id); });
  const auto first = std::find(all.begin(), all.end(), all[3]);
  REQUIRE(cut == std::vector<int64_t>(all.begin(), first + 1));
  REQUIRE(streamed == cut);
  o.max_new_tokens = 0;
  REQUIRE(granite::generate(*model, {3, 9, 27}, o).empty());
}

TEST_CASE("generation input errors are clear", "[generate][errors]") {
  auto model = fixture_model("bigcode_mqa");  // n_positions 128, vocab 256
  granite::GenerationOptions o;
  REQUIRE_THROWS_WITH(granite::generate(*model, {}, o), Contains("prompt is empty"));
  REQUIRE_THROWS_WITH(granite::generate(*model, {1, 256}, o), Contains("token id 256"));
  o.max_new_tokens = 200;
  REQUIRE_THROWS_WITH(granite::generate(*model, {1, 2}, o), Contains("n_positions (128)"));
  torch::NoGradGuard no_grad;
  REQUIRE_THROWS_WITH(model->forward(torch::ones({1, 2}, torch::kInt64), torch::tensor({{0, 128}})),
                      Contains("position_ids span [0, 128] but the position table has 128 entries"));
}
