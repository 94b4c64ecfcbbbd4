// pack_for_inference (granite/nn/packed_linears.h): Llama's q/k/v and gate/up as one GEMM each, without extra
// memory. Inference logits still equal transformers' fixtures; the parameters are views of the packed matrices
// (same names, same values); autograd and Module::to still work, through the separate matrices.
#include <catch2/catch.hpp>

#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "granite/models/llama.h"
#include "support/tensor_match.h"

namespace {

std::string fixture_dir(const std::string& name) { return granite::test::source_path("tests/fixtures/hf/" + name); }

std::map<std::string, torch::Tensor> snapshot(const granite::CausalLM& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace

TEST_CASE("packed projections give transformers' logits and keep every parameter's name and value",
          "[models][parity]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "llama_mqa_nobias_headdim", "llama_mha_bias_tied"}) {
    INFO(name);
    auto model = granite::load_pretrained(fixture_dir(name));
    const auto before = snapshot(model);
    model->pack_for_inference();
    const auto after = snapshot(model);
    REQUIRE(after.size() == before.size());
    for (const auto& [key, value] : before) REQUIRE(torch::equal(after.at(key), value));
    auto& layer = *model->as<granite::LlamaForCausalLMImpl>()->model->layers[0]->as<granite::LlamaDecoderLayer>();
    REQUIRE(layer.self_attn->k_proj->weight.is_alias_of(layer.self_attn->q_proj->weight));  // one storage
    REQUIRE(layer.mlp->up_proj->weight.is_alias_of(layer.mlp->gate_proj->weight));

    const auto exp = granite::load_safetensors(fixture_dir(name) + "/expected.safetensors");
    torch::NoGradGuard no_grad;
    REQUIRE_CLOSE(model->forward(exp.at("input_ids")), exp.at("logits"), 1e-4);
  }
}

TEST_CASE("a packed model still trains (gradients through the separate matrices) and moves dtype", "[models]") {
  const auto dir = fixture_dir("llama_gqa_bias_untied_theta1e7");
  auto packed = granite::load_pretrained(dir), plain = granite::load_pretrained(dir);
  packed->pack_for_inference();
  const auto ids = granite::load_safetensors(dir + "/expected.safetensors").at("input_ids");
  packed->forward(ids).logsumexp(-1).mean().backward();
  plain->forward(ids).logsumexp(-1).mean().backward();
  const auto plain_params = plain->named_parameters();
  for (const auto& p : packed->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    REQUIRE_CLOSE(p.value().grad(), plain_params[p.key()].grad(), 1e-6);
  }
  // Module::to re-points every parameter: the packed copy is dropped and the separate matrices serve inference.
  packed->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  REQUIRE_CLOSE(packed->forward(ids).to(torch::kFloat), plain->forward(ids), 1e-4);
}
