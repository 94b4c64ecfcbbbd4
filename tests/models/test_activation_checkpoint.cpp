// Activation checkpointing gives the gradients of the plain backward -- with dropout too, since the recomputation
// replays the forward's RNG state -- on both families; generation and evaluation ignore it.
#include <catch2/catch.hpp>

#include "granite/models/factory.h"
#include "granite/train/batch.h"
#include "support/tensor_match.h"

namespace {

struct Run {
  torch::Tensor loss;
  std::vector<torch::Tensor> grads;
};

Run loss_and_grads(const char* config, bool checkpointing, double dropout) {
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path(config));
  cfg.num_hidden_layers = 3;
  cfg.attention_dropout = dropout;
  if (cfg.architecture == granite::Architecture::GPTBigCode) cfg.resid_dropout = cfg.embedding_dropout = dropout;
  torch::manual_seed(11);
  auto model = granite::make_model(cfg);
  model->train();
  model->set_activation_checkpointing(checkpointing);
  const auto ids = torch::randint(0, cfg.vocab_size, {2, 24}, torch::kLong);
  const auto segments = torch::cat({torch::zeros({2, 10}, torch::kLong), torch::ones({2, 14}, torch::kLong)}, 1);
  const auto positions = torch::cat({torch::arange(10), torch::arange(14)}).unsqueeze(0).expand({2, 24});
  torch::manual_seed(99);  // dropout masks
  const auto hidden = model->hidden_states(ids, positions, granite::document_causal_mask(segments));
  const auto logits = torch::nn::functional::linear(hidden, model->lm_head_weight());
  auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, cfg.vocab_size}).narrow(0, 0, 47),
                                                   ids.reshape({-1}).narrow(0, 1, 47));
  loss.backward();
  Run r{loss.detach(), {}};
  for (const auto& p : model->parameters()) r.grads.push_back(p.grad().clone());
  return r;
}

}  // namespace

TEST_CASE("activation checkpointing leaves the loss and every gradient unchanged", "[models][checkpointing]") {
  for (const char* config : {"configs/models/tiny-llama.json", "configs/models/tiny-gpt-bigcode.json"}) {
    for (double dropout : {0.0, 0.1}) {
      INFO(config << " dropout " << dropout);
      const Run plain = loss_and_grads(config, false, dropout), recomputed = loss_and_grads(config, true, dropout);
      REQUIRE_CLOSE(recomputed.loss, plain.loss, 0.0);
      REQUIRE(recomputed.grads.size() == plain.grads.size());
      for (size_t i = 0; i < plain.grads.size(); ++i) REQUIRE_CLOSE(recomputed.grads[i], plain.grads[i], 1e-6);
      // The run with dropout really drew masks: its loss differs from the run without.
      if (dropout > 0) CHECK(granite::test::max_abs_diff(plain.loss, loss_and_grads(config, false, 0.0).loss).max_abs > 0);
    }
  }
}
