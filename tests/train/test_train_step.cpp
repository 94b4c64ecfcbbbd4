// train_step on a tiny Granite (Llama family) over real packed code with FIM: gradient accumulation equals one big
// micro-batch, the loss it reports is the model's, a non-finite step is skipped, the parameter groups, and the
// loss falls as it trains.
#include <catch2/catch.hpp>

#include "granite/config/model_config.h"
#include "granite/models/factory.h"
#include "granite/train/init.h"
#include "granite/train/train_step.h"
#include "support/real_code.h"
#include "support/tensor_match.h"

namespace {

granite::ModelConfig tiny_config() {
  return granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
}

using granite::test::code_batches;

// Splits (B, T) batches into B single-row batches.
std::vector<granite::TrainBatch> rows_of(const granite::TrainBatch& b) {
  std::vector<granite::TrainBatch> out;
  for (int64_t r = 0; r < b.input_ids.size(0); ++r) {
    auto row = [&](const torch::Tensor& t) { return t.narrow(0, r, 1); };
    out.push_back({row(b.input_ids), row(b.labels), row(b.objectives), row(b.position_ids), row(b.segment_ids)});
  }
  return out;
}

// The optimizer side of a model: flat buffers and AdamW over them (float32 unless said).
struct Optimizer {
  granite::ParameterBuffers params;
  granite::AdamW adamw;
  Optimizer(granite::CausalLMImpl& model, const granite::OptimizerConfig& c,
            c10::ScalarType compute_dtype = torch::kFloat)
      : params(model, c, compute_dtype), adamw(params, c) {}
};

granite::StepResult step(granite::CausalLMImpl& model, Optimizer& opt, const std::vector<granite::TrainBatch>& micro,
                         const granite::TrainStepOptions& so) {
  return granite::train_step(model, opt.params, opt.adamw, micro, so);
}

std::vector<torch::Tensor> parameters_of(granite::CausalLMImpl& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace

TEST_CASE("gradient accumulation over micro-batches equals one micro-batch of the whole batch", "[train][step]") {
  const auto whole = code_batches(1, 4);
  const auto split = rows_of(whole[0]);
  granite::OptimizerConfig oc;
  granite::TrainStepOptions so;
  so.lr = 1e-3;
  torch::manual_seed(0);
  auto a = granite::make_model(tiny_config());
  torch::manual_seed(0);
  auto b = granite::make_model(tiny_config());
  Optimizer opt_a(*a, oc), opt_b(*b, oc);
  for (int i = 0; i < 3; ++i) {
    const auto ra = step(*a, opt_a, whole, so);
    const auto rb = step(*b, opt_b, split, so);
    CHECK(ra.loss == Approx(rb.loss).epsilon(1e-5));
    CHECK(ra.grad_norm == Approx(rb.grad_norm).epsilon(1e-4));
    CHECK(ra.report.tokens == rb.report.tokens);
    CHECK(ra.tokens == 4 * 64);
  }
  const auto pa = parameters_of(*a), pb = parameters_of(*b);
  for (size_t i = 0; i < pa.size(); ++i) REQUIRE_CLOSE(pa[i], pb[i], 2e-5);
}

TEST_CASE("the step reports the model's loss, the loss falls as the tiny model trains on real code", "[train][step]") {
  torch::manual_seed(1);
  auto model = granite::make_model(tiny_config());
  granite::OptimizerConfig oc;
  granite::TrainStepOptions so;
  so.lr = 3e-3;
  Optimizer opt(*model, oc);
  const auto data = code_batches(40, 4);
  const auto before = granite::evaluate_loss(*model, {data[0]}, so.alpha);
  const auto first = step(*model, opt, {data[0]}, so);
  CHECK(first.loss == Approx(before.loss(so.alpha)).epsilon(1e-5));
  CHECK(first.report.clm_loss() == Approx(before.clm_loss()).epsilon(1e-5));
  CHECK(std::log(49152.0) == Approx(first.loss).epsilon(0.05));  // random init: about uniform over the vocabulary
  double last = 0;
  for (size_t i = 1; i < data.size(); ++i) last = step(*model, opt, {data[i]}, so).loss;
  CHECK(last < first.loss - 2.0);
}

TEST_CASE("a non-finite loss skips the update", "[train][step]") {
  torch::manual_seed(2);
  auto model = granite::make_model(tiny_config());
  Optimizer opt(*model, granite::OptimizerConfig{});
  const auto data = code_batches(1, 2);
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["model.norm.weight"].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const auto before = parameters_of(*model);
  const auto r = step(*model, opt, data, granite::TrainStepOptions{});
  CHECK(r.skipped);
  const auto after = parameters_of(*model);
  for (size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i].nan_to_num(0), after[i].nan_to_num(0)));
}

TEST_CASE("weight decay applies to linear weights only, unless configured", "[train][step]") {
  granite::OptimizerConfig c;
  auto m = torch::zeros({4, 4}), v = torch::zeros({4});
  CHECK(granite::decays("model.layers.0.self_attn.q_proj.weight", m, c));
  CHECK(granite::decays("transformer.h.3.mlp.c_fc.weight", m, c));
  CHECK_FALSE(granite::decays("model.layers.0.self_attn.q_proj.bias", v, c));
  CHECK_FALSE(granite::decays("model.norm.weight", v, c));
  CHECK_FALSE(granite::decays("model.embed_tokens.weight", m, c));
  CHECK_FALSE(granite::decays("transformer.wte.weight", m, c));
  CHECK_FALSE(granite::decays("transformer.wpe.weight", m, c));
  c.decay_embeddings = c.decay_1d = true;
  CHECK(granite::decays("model.embed_tokens.weight", m, c));
  CHECK(granite::decays("model.norm.weight", v, c));
  auto model = granite::make_model(tiny_config());
  granite::ParameterBuffers params(*model, granite::OptimizerConfig{}, torch::kFloat);
  REQUIRE(params.groups().size() == 2);
  CHECK(params.groups()[0].decay);
  CHECK(params.groups()[0].slots.size() == 2 * 7);  // 7 linear weights per layer, 2 layers
  CHECK(params.groups()[0].slots.size() + params.groups()[1].slots.size() == model->parameters().size());
}

TEST_CASE("pretraining init: N(0, 0.02), residual projections scaled by 1/sqrt(2L), zero biases, unit norms",
          "[train][init]") {
  for (const char* name : {"configs/models/tiny-llama.json", "configs/models/tiny-gpt-bigcode.json"}) {
    INFO(name);
    granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path(name));
    cfg.num_hidden_layers = 8;  // so that the scaled std (0.02 / 4) stands apart from 0.02
    torch::manual_seed(7);
    auto model = granite::make_model(cfg, /*initialize=*/false);
    granite::init_for_pretraining(*model);
    int residual = 0;
    for (const auto& item : model->named_parameters()) {
      const std::string& key = item.key();
      const torch::Tensor p = item.value().to(torch::kDouble);
      INFO(key);
      if (key.size() > 4 && key.compare(key.size() - 4, 4, "bias") == 0) {
        CHECK(p.abs().max().item<double>() == 0.0);
      } else if (key.find("norm") != std::string::npos || key.find(".ln_") != std::string::npos) {
        CHECK(p.eq(1.0).all().item<bool>());
      } else if (granite::is_residual_projection(key)) {
        ++residual;
        CHECK(p.std().item<double>() == Approx(0.02 / 4).epsilon(0.05));
      } else {
        CHECK(p.std().item<double>() == Approx(0.02).epsilon(0.05));
      }
    }
    CHECK(residual == 2 * 8);
    // Seeded: the same numbers again.
    torch::manual_seed(7);
    auto again = granite::make_model(cfg, false);
    granite::init_for_pretraining(*again);
    CHECK(torch::equal(again->lm_head_weight(), model->lm_head_weight()));
  }
}

TEST_CASE("without the document mask a packed row is one causal sequence with positions 0..T-1", "[train][step]") {
  torch::manual_seed(4);
  auto model = granite::make_model(tiny_config());
  std::vector<granite::TrainBatch> data;
  for (const auto& candidate : code_batches(40, 4, 256))
    if (candidate.segment_ids.max().item<int64_t>() > 0) {  // rows that hold several documents
      data.push_back(candidate);
      break;
    }
  REQUIRE(data.size() == 1);
  const auto& b = data[0];
  const auto plain = granite::evaluate_loss(*model, data, 0.5, /*document_mask=*/false);
  torch::NoGradGuard no_grad;
  const auto reference = granite::objective_loss(model->hidden_states(b.input_ids), model->lm_head_weight(), {},
                                                 b.labels, b.objectives, granite::count_objectives(b.objectives), 0.5);
  CHECK(plain.loss(0.5) == Approx(reference.loss.item<double>()).epsilon(1e-6));
  const auto masked = granite::evaluate_loss(*model, data, 0.5, /*document_mask=*/true);
  CHECK(std::abs(masked.loss(0.5) - plain.loss(0.5)) > 1e-4);
}
