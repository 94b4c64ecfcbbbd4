// Logits and greedy continuations against Hugging Face transformers (fixtures: tests/fixtures/make_fixtures.py, run
// with transformers 5.17 on random-weight models of both families: MHA/GQA/MQA, biased/unbiased, tied/untied,
// rope_theta 1e4/1e7, explicit head_dim). fp32 on CPU: max |diff| <= 1e-4.
#include <catch2/catch.hpp>

#include "granite/generate/generator.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "granite/nn/attention.h"
#include "support/tensor_match.h"

using granite::test::source_path;

namespace {

const char* kFixtures[] = {"llama_mha_bias_tied", "llama_gqa_bias_untied_theta1e7", "llama_mqa_nobias_headdim",
                           "bigcode_mqa", "bigcode_mha"};

std::string fixture_dir(const std::string& name) { return source_path("tests/fixtures/hf/" + name); }
std::map<std::string, torch::Tensor> expected(const std::string& name) {
  return granite::load_safetensors(fixture_dir(name) + "/expected.safetensors");
}
std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.reshape({-1}).to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

TEST_CASE("logits equal transformers on every fixture model (fp32, CPU)", "[models][parity]") {
  torch::NoGradGuard no_grad;
  for (const char* name : kFixtures) {
    INFO(name);
    auto model = granite::load_pretrained(fixture_dir(name));
    auto exp = expected(name);
    auto logits = model->forward(exp.at("input_ids"));
    REQUIRE_CLOSE(logits, exp.at("logits"), 1e-4);
  }
}

TEST_CASE("greedy continuation equals transformers generate()", "[models][parity][generate]") {
  for (const char* name : kFixtures) {
    INFO(name);
    auto model = granite::load_pretrained(fixture_dir(name));
    auto exp = expected(name);
    granite::GenerationOptions opts;
    opts.max_new_tokens = exp.at("greedy").size(1);  // no stop ids: HF ran with min_new_tokens = max
    auto ids = granite::generate(*model, to_vector(exp.at("prompt")), opts);
    REQUIRE(ids == to_vector(exp.at("greedy")));
  }
}

TEST_CASE("KV-cached decoding equals the full forward at every step", "[models][kv_cache]") {
  torch::NoGradGuard no_grad;
  for (const char* name : kFixtures) {
    INFO(name);
    auto model = granite::load_pretrained(fixture_dir(name));
    auto ids = expected(name).at("input_ids").narrow(0, 0, 1);  // (1, 13)
    const int64_t T = ids.size(1);
    granite::KVCache cache(model->config(), 1, T, torch::kFloat32, torch::kCPU);
    auto full = model->forward(ids);  // (1, T, V)
    // prefill 5 tokens, then a chunk of 3 (bottom-right causal with a cache), then one token at a time
    std::vector<torch::Tensor> pieces{model->forward(ids.narrow(1, 0, 5), {}, &cache),
                                      model->forward(ids.narrow(1, 5, 3), {}, &cache)};
    for (int64_t t = 8; t < T; ++t) pieces.push_back(model->forward(ids.narrow(1, t, 1), {}, &cache));
    auto cached = torch::cat(pieces, 1);
    REQUIRE(cache.length() == T);
    REQUIRE_CLOSE(cached, full, 1e-4);
    REQUIRE(torch::equal(cached.argmax(-1), full.argmax(-1)));
  }
}

TEST_CASE("position_ids: explicit equals default, RoPE is shift-invariant, learned positions are not", "[models]") {
  torch::NoGradGuard no_grad;
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    auto model = granite::load_pretrained(fixture_dir(name));
    auto ids = expected(name).at("input_ids");
    auto pos = torch::arange(ids.size(1)).unsqueeze(0).expand_as(ids);
    auto base = model->forward(ids);
    REQUIRE_CLOSE(model->forward(ids, pos), base, 0.0);
    auto shifted = model->forward(ids, pos + 3);
    if (model->config().architecture == granite::Architecture::Llama) {
      // RoPE scores depend only on relative position: a uniform shift leaves the logits unchanged...
      REQUIRE_CLOSE(shifted, base, 1e-4);
      // ...while a non-uniform change of positions does not
      auto stretched = model->forward(ids, pos * 2);
      REQUIRE(granite::test::max_abs_diff(stretched, base).max_abs > 1e-2);
    } else {
      // learned absolute positions: any shift changes the result
      REQUIRE(granite::test::max_abs_diff(shifted, base).max_abs > 1e-2);
    }
  }
}

TEST_CASE("GQA/MQA attention equals MHA with repeated KV heads, and chunked queries see the cache", "[nn][attention]") {
  auto gen = at::detail::createCPUGenerator(7);
  auto q = torch::randn({2, 8, 5, 16}, gen);
  auto k = torch::randn({2, 2, 9, 16}, gen), v = torch::randn({2, 2, 9, 16}, gen);
  auto k_rep = k.repeat_interleave(4, 1), v_rep = v.repeat_interleave(4, 1);
  auto out = granite::causal_attention(q, k, v, 0.25, 0.0, granite::AttentionBackend::Math);
  REQUIRE_CLOSE(out, granite::causal_attention(q, k_rep, v_rep, 0.25, 0.0, granite::AttentionBackend::Math), 1e-6);
  // reference: query i of the last 5 sees keys 0 .. 4 + i
  auto scores = torch::matmul(q, k_rep.transpose(-2, -1)) * 0.25;
  auto allowed = torch::ones({5, 9}, torch::kBool).tril(4);
  auto ref = torch::matmul(torch::softmax(scores.masked_fill(allowed.logical_not(), -INFINITY), -1), v_rep);
  REQUIRE_CLOSE(out, ref, 1e-5);
}

TEST_CASE("an additive mask (0 / -inf) gives the attention of the bool mask it came from", "[nn][attention]") {
  auto gen = at::detail::createCPUGenerator(8);
  auto q = torch::randn({2, 4, 3, 16}, gen), k = torch::randn({2, 2, 7, 16}, gen), v = torch::randn({2, 2, 7, 16}, gen);
  auto allowed = torch::rand({2, 1, 3, 7}, gen) < 0.6;
  allowed.select(-1, 0).fill_(true);  // every query sees at least one key
  const auto additive = granite::additive_mask(allowed, torch::kFloat);
  REQUIRE(additive.scalar_type() == torch::kFloat);
  REQUIRE(torch::equal(additive.eq(0), allowed));
  REQUIRE(torch::equal(additive.isinf(), allowed.logical_not()));
  const auto from_bool = granite::causal_attention(q, k, v, 0.25, 0.0, granite::AttentionBackend::Math, allowed);
  REQUIRE(torch::equal(granite::causal_attention(q, k, v, 0.25, 0.0, granite::AttentionBackend::Math, additive),
                       from_bool));
  // a mask in another dtype than q's is refused, naming both
  REQUIRE_THROWS_WITH(granite::causal_attention(q, k, v, 0.25, 0.0, granite::AttentionBackend::Math,
                                                granite::additive_mask(allowed, torch::kDouble)),
                      Catch::Contains("additive in q's dtype (Float)") && Catch::Contains("Double"));
}
