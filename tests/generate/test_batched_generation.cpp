// Batched generation: left-padded prompts of different lengths give exactly what each prompt gives alone (greedy,
// and sampled with per-row seeds), on both architectures; rows stop on their own.
#include <catch2/catch.hpp>

#include <algorithm>
#include <utility>

#include "granite/generate/generator.h"
#include "granite/io/pretrained.h"
#include "support/paths.h"

using granite::test::source_path;

namespace {

const std::vector<std::vector<int64_t>> kPrompts = {
    {5, 17, 42, 7, 9, 11, 3, 60}, {23}, {8, 8, 8, 1}, {99, 4, 31, 77, 12, 2}};

}  // namespace

TEST_CASE("batched greedy generation equals one prompt at a time, both architectures", "[generate][batch]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa", "llama_mha_bias_tied"}) {
    INFO(name);
    auto model = granite::load_pretrained(source_path(std::string("tests/fixtures/hf/") + name));
    granite::GenerationOptions o;
    o.max_new_tokens = 12;
    const auto batched = granite::generate_batch(*model, kPrompts, o);
    REQUIRE(batched.size() == kPrompts.size());
    for (size_t b = 0; b < kPrompts.size(); ++b) {
      INFO("row " << b);
      CHECK(batched[b] == granite::generate(*model, kPrompts[b], o));
      CHECK(batched[b].size() == 12);
    }
  }
}

TEST_CASE("batched sampling with per-row seeds equals each prompt sampled alone with its seed", "[generate][batch]") {
  auto model = granite::load_pretrained(source_path("tests/fixtures/hf/llama_mha_bias_tied"));
  granite::GenerationOptions o;
  o.max_new_tokens = 10;
  o.sampling.greedy = false;
  o.sampling.temperature = 1.5;  // flat enough that different seeds really differ
  o.sampling.top_p = 0.95;
  o.repetition_penalty = 1.2;
  o.row_seeds = {11, 12, 13, 11};
  const auto batched = granite::generate_batch(*model, kPrompts, o);
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    granite::GenerationOptions alone = o;
    alone.row_seeds.clear();
    alone.seed = o.row_seeds[b];
    INFO("row " << b);
    CHECK(batched[b] == granite::generate(*model, kPrompts[b], alone));
  }
  // Without row seeds row b uses seed + b: the same prompt twice in a batch gives two different samples.
  granite::GenerationOptions same = o;
  same.row_seeds.clear();
  same.seed = 7;
  const auto twins = granite::generate_batch(*model, {kPrompts[0], kPrompts[0]}, same);
  CHECK(twins[0] != twins[1]);
}

TEST_CASE("each row of a batch stops at its own stop id while the others go on", "[generate][batch]") {
  auto model = granite::load_pretrained(source_path("tests/fixtures/hf/bigcode_mha"));
  granite::GenerationOptions o;
  o.max_new_tokens = 10;
  const auto free_run = granite::generate_batch(*model, kPrompts, o);
  // Stop at row 1's third token: row 1 ends there (the stop id included); a row that never emits it runs to the limit.
  o.stop_ids = {free_run[1][2]};
  std::vector<std::vector<int64_t>> streamed(kPrompts.size());
  const auto stopped = granite::generate_batch(*model, kPrompts, o, [&](size_t b, int64_t id) {
    streamed[b].push_back(id);
  });
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    INFO("row " << b);
    CHECK(stopped[b] == streamed[b]);
    CHECK(stopped[b] == granite::generate(*model, kPrompts[b], o));
    const auto& full = free_run[b];
    const auto hit = std::find(full.begin(), full.end(), o.stop_ids[0]);
    const size_t expected = hit == full.end() ? full.size() : size_t(hit - full.begin()) + 1;
    CHECK(stopped[b].size() == expected);
  }
  CHECK(stopped[1].size() <= 3);
}

TEST_CASE("batched generation errors name the prompt", "[generate][batch][errors]") {
  auto model = granite::load_pretrained(source_path("tests/fixtures/hf/llama_mha_bias_tied"));
  granite::GenerationOptions o;
  REQUIRE_THROWS_WITH(granite::generate_batch(*model, {{1, 2}, {}}, o),
                      Catch::Matchers::Contains("prompt 1 is empty"));
  o.row_seeds = {1};
  REQUIRE_THROWS_WITH(granite::generate_batch(*model, {{1, 2}, {3}}, o),
                      Catch::Matchers::Contains("1 row seeds for 2 prompts"));
}

TEST_CASE("static-shape decode steps (what a CUDA graph records) equal the dynamic ones", "[generate][batch]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    auto model = granite::load_pretrained(source_path(std::string("tests/fixtures/hf/") + name));
    granite::GenerationOptions o;
    o.max_new_tokens = 10;
    o.decode_steps = granite::DecodeSteps::Dynamic;
    const auto dynamic = granite::generate_batch(*model, kPrompts, o);
    o.decode_steps = granite::DecodeSteps::Static;
    CHECK(granite::generate_batch(*model, kPrompts, o) == dynamic);
    o.decode_steps = granite::DecodeSteps::CudaGraph;  // on CPU: the static steps, uncaptured
    CHECK(granite::generate_batch(*model, kPrompts, o) == dynamic);
    CHECK(granite::generate(*model, kPrompts[0], o) == dynamic[0]);

    // Greedy static steps run one step ahead of the host (the argmax fed forward on the device): rows stopping at
    // different steps, and the streamed tokens, are still exactly the dynamic decoder's.
    REQUIRE(dynamic[1].size() == 10);
    o.stop_ids = {dynamic[1][3], dynamic[2][6]};
    std::vector<std::pair<size_t, int64_t>> streamed[2];
    std::vector<std::vector<int64_t>> stopped[2];
    for (int s = 0; s < 2; ++s) {
      o.decode_steps = s == 0 ? granite::DecodeSteps::Dynamic : granite::DecodeSteps::Static;
      stopped[s] = granite::generate_batch(*model, kPrompts, o, [&](size_t b, int64_t id) {
        streamed[s].emplace_back(b, id);
      });
    }
    CHECK(stopped[1] == stopped[0]);
    CHECK(streamed[1] == streamed[0]);
    CHECK(stopped[0][1].size() <= 4);  // row 1 stopped early, at its own step
    const auto by_length = [](const auto& a, const auto& b) { return a.size() < b.size(); };
    const auto [shortest, longest] = std::minmax_element(stopped[0].begin(), stopped[0].end(), by_length);
    CHECK(shortest->size() < longest->size());
    o.stop_ids = {};

    // Sampling (per-row seeds) takes the host round trip each step: the static steps give the dynamic ones' tokens.
    o.sampling.greedy = false;
    o.sampling.temperature = 0.8;
    o.sampling.top_k = 20;
    o.decode_steps = granite::DecodeSteps::Dynamic;
    const auto sampled = granite::generate_batch(*model, kPrompts, o);
    o.decode_steps = granite::DecodeSteps::Static;
    CHECK(granite::generate_batch(*model, kPrompts, o) == sampled);
  }
}
