// train_step on a tiny Granite (Llama family) over real packed code with FIM: gradient accumulation equals one big
// micro-batch, the loss it reports is the model's, a non-finite step is skipped, the parameter groups, and the
// loss falls as it trains.
#include <catch2/catch.hpp>

#include "granite/config/model_config.h"
#include "granite/data/packed_loader.h"
#include "granite/models/factory.h"
#include "granite/train/init.h"
#include "granite/train/optimizer.h"
#include "granite/train/train_step.h"
#include "support/real_code.h"
#include "support/tensor_match.h"

namespace {

granite::ModelConfig tiny_config() {
  return granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
}

// Real code shards (tokenized CPython files, EOS after each), written once.
const std::string& shards() {
  static const std::string dir = [] {
    const std::string d = granite::test::process_scratch_dir("train_step_shards");
    granite::test::write_code_shard(d, 20000, 40);
    return d;
  }();
  return dir;
}

std::vector<granite::TrainBatch> batches(int n, int64_t rows, int64_t seq_len = 64) {
  granite::LoaderConfig c;
  c.sources = {{"code", {shards()}, 1.0}};
  c.seq_len = seq_len;
  c.micro_batch = rows;
  c.fim.rate = 0.5;
  granite::PackedLoader loader(c, granite::test::starcoder_tokenizer());
  std::vector<granite::TrainBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(granite::to_tensors(loader.next()));
  return out;
}

// Splits (B, T) batches into B single-row batches.
std::vector<granite::TrainBatch> rows_of(const granite::TrainBatch& b) {
  std::vector<granite::TrainBatch> out;
  for (int64_t r = 0; r < b.input_ids.size(0); ++r) {
    auto row = [&](const torch::Tensor& t) { return t.narrow(0, r, 1); };
    out.push_back({row(b.input_ids), row(b.labels), row(b.objectives), row(b.position_ids), row(b.segment_ids)});
  }
  return out;
}

std::vector<torch::Tensor> parameters_of(granite::CausalLMImpl& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace

TEST_CASE("gradient accumulation over micro-batches equals one micro-batch of the whole batch", "[train][step]") {
  const auto whole = batches(1, 4);
  const auto split = rows_of(whole[0]);
  granite::OptimizerConfig oc;
  granite::TrainStepOptions so;
  so.lr = 1e-3;
  torch::manual_seed(0);
  auto a = granite::make_model(tiny_config());
  torch::manual_seed(0);
  auto b = granite::make_model(tiny_config());
  auto opt_a = granite::make_adamw(*a, oc, so.lr), opt_b = granite::make_adamw(*b, oc, so.lr);
  for (int step = 0; step < 3; ++step) {
    const auto ra = granite::train_step(*a, *opt_a, whole, so);
    const auto rb = granite::train_step(*b, *opt_b, split, so);
    CHECK(ra.loss == Approx(rb.loss).epsilon(1e-5));
    CHECK(ra.grad_norm == Approx(rb.grad_norm).epsilon(1e-4));
    CHECK(ra.report.tokens == rb.report.tokens);
    CHECK(ra.tokens == 4 * 64);
  }
  const auto pa = parameters_of(*a), pb = parameters_of(*b);
  for (size_t i = 0; i < pa.size(); ++i) REQUIRE_CLOSE(pa[i], pb[i], 2e-5);
}

TEST_CASE("the step reports the model's loss; the loss falls as the tiny model trains on real code", "[train][step]") {
  torch::manual_seed(1);
  auto model = granite::make_model(tiny_config());
  granite::OptimizerConfig oc;
  granite::TrainStepOptions so;
  so.lr = 3e-3;
  auto opt = granite::make_adamw(*model, oc, so.lr);
  const auto data = batches(40, 4);
  const auto before = granite::evaluate_loss(*model, {data[0]}, so.alpha);
  const auto first = granite::train_step(*model, *opt, {data[0]}, so);
  CHECK(first.loss == Approx(before.loss(so.alpha)).epsilon(1e-5));
  CHECK(first.report.clm_loss() == Approx(before.clm_loss()).epsilon(1e-5));
  CHECK(std::log(49152.0) == Approx(first.loss).epsilon(0.05));  // random init: about uniform over the vocabulary
  double last = 0;
  for (size_t i = 1; i < data.size(); ++i) last = granite::train_step(*model, *opt, {data[i]}, so).loss;
  CHECK(last < first.loss - 2.0);
}

TEST_CASE("a non-finite loss skips the update", "[train][step]") {
  torch::manual_seed(2);
  auto model = granite::make_model(tiny_config());
  auto opt = granite::make_adamw(*model, granite::OptimizerConfig{}, 1e-3);
  const auto data = batches(1, 2);
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["model.norm.weight"].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const auto before = parameters_of(*model);
  const auto r = granite::train_step(*model, *opt, data, granite::TrainStepOptions{});
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
  auto opt = granite::make_adamw(*model, granite::OptimizerConfig{}, 1e-3);
  REQUIRE(opt->param_groups().size() == 2);
  CHECK(opt->param_groups()[0].params().size() == 2 * 7);  // 7 linear weights per layer, 2 layers
  CHECK(opt->param_groups()[0].params().size() + opt->param_groups()[1].params().size() == model->parameters().size());
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
