// Sampling and the generation loop: determinism by seed, top-k/top-p semantics, the sampled distribution, stop ids,
// limits and input errors.
#include <catch2/catch.hpp>

#include <set>

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

TEST_CASE("stop strings end generation once the output contains them", "[generate]") {
  auto model = fixture_model("bigcode_mqa");
  // A stand-in decoder (the fixture's vocabulary has no tokenizer): each id as "<id>".
  const auto decode = [](const std::vector<int64_t>& ids) {
    std::string text;
    for (int64_t id : ids) text += "<" + std::to_string(id) + ">";
    return text;
  };
  granite::GenerationOptions o;
  o.max_new_tokens = 10;
  const auto all = granite::generate(*model, {3, 9, 27}, o);
  REQUIRE(all.size() == 10);
  // The text of tokens 3 and 4 together, split across them: generation stops after token 4.
  const std::string two = decode({all[3], all[4]});
  o.stop_strings = {two.substr(1, two.size() - 2)};
  o.decode = decode;
  const auto cut = granite::generate(*model, {3, 9, 27}, o);
  const std::string whole = decode(all);
  const size_t at = whole.find(o.stop_strings[0]);
  REQUIRE(at != std::string::npos);
  size_t n = 0;  // the fewest tokens whose text contains the stop string
  while (decode(std::vector<int64_t>(all.begin(), all.begin() + n)).find(o.stop_strings[0]) == std::string::npos) ++n;
  CHECK(cut == std::vector<int64_t>(all.begin(), all.begin() + n));
  CHECK(n <= 5);
  o.decode = nullptr;
  REQUIRE_THROWS_WITH(granite::generate(*model, {3, 9, 27}, o), Contains("need a decode function"));
}

TEST_CASE("the repetition penalty is HF's: positive logits divided, negative multiplied, once per id",
          "[generate][sampler]") {
  const auto logits = torch::tensor({2.0f, -1.0f, 0.5f, -3.0f, 1.0f});
  const auto out = granite::penalize_repeats(logits, {0, 1, 1, 3}, 2.0);
  CHECK(torch::equal(out, torch::tensor({1.0f, -2.0f, 0.5f, -6.0f, 1.0f})));
  CHECK(torch::equal(granite::penalize_repeats(logits, {0, 1}, 1.0), logits));
  REQUIRE_THROWS_WITH(granite::penalize_repeats(logits, {0}, 0.0), Contains("must be > 0"));
  // In generation: penalty 1 changes nothing; a strong penalty never repeats an id while fresh ones remain likely.
  auto model = fixture_model("llama_mha_bias_tied");
  granite::GenerationOptions o;
  o.max_new_tokens = 12;
  const auto plain = granite::generate(*model, {5, 17, 42}, o);
  o.repetition_penalty = 1.0;
  CHECK(granite::generate(*model, {5, 17, 42}, o) == plain);
  o.repetition_penalty = 1e6;
  const auto fresh = granite::generate(*model, {5, 17, 42}, o);
  std::set<int64_t> ids(fresh.begin(), fresh.end());
  ids.insert({5, 17, 42});
  CHECK(ids.size() == fresh.size() + 3);
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
