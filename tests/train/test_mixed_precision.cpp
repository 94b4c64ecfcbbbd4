// The precision policy and the optimizer behind train_step: flat parameter buffers (fp32 layout: parameters and
// gradients are views; mixed: bf16 compute, fp32 master and gradient accumulation), AdamW over them against
// LibTorch's own AdamW, mixed-precision training against fp32 training, and an exact checkpoint round trip of the
// mixed-precision state. (The fused CUDA kernel: tests/cuda/test_adamw_cuda.cpp.)
#include <catch2/catch.hpp>

#include <torch/optim/adamw.h>

#include "granite/models/factory.h"
#include "granite/train/adamw.h"
#include "granite/train/checkpoint.h"
#include "granite/train/parameter_buffers.h"
#include "granite/train/train_step.h"
#include "support/real_code.h"
#include "support/tensor_match.h"
#include "support/train_runs.h"

using Catch::Matchers::Contains;
using granite::test::code_batches;

namespace {

granite::CausalLM tiny_model(uint64_t seed, int64_t layers = 2) {
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  cfg.num_hidden_layers = layers;
  torch::manual_seed(seed);
  return granite::make_model(cfg);
}

// A scalar of the whole forward (every logit contributes to the gradients).
torch::Tensor forward_scalar(granite::CausalLMImpl& model, const granite::TrainBatch& b) {
  return model.forward(b.input_ids, b.position_ids).to(torch::kFloat).logsumexp(-1).mean();
}

std::map<std::string, torch::Tensor> named(granite::CausalLMImpl& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model.named_parameters()) out.emplace(item.key(), item.value());
  return out;
}

}  // namespace

TEST_CASE("AdamW over flat buffers equals LibTorch's AdamW, weight decay per group", "[train][adamw]") {
  auto ours = tiny_model(3), reference = tiny_model(3);
  granite::OptimizerConfig c;
  c.weight_decay = 0.1;
  granite::ParameterBuffers params(*ours, c, torch::kFloat);
  granite::AdamW adamw(params, c);
  const double lr = 1e-2;
  std::vector<torch::Tensor> decayed, plain;
  for (const auto& item : reference->named_parameters())
    (granite::decays(item.key(), item.value(), c) ? decayed : plain).push_back(item.value());
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr).betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, options(c.weight_decay));
  groups.emplace_back(plain, options(0.0));
  torch::optim::AdamW torch_adamw(groups, torch::optim::AdamWOptions(lr));

  auto mine = named(*ours), theirs = named(*reference);
  torch::manual_seed(5);
  for (int step = 0; step < 5; ++step) {
    for (auto& [name, p] : theirs) {
      const torch::Tensor g = torch::randn_like(p) * (step + 1);
      p.mutable_grad() = g.clone();
      mine.at(name).grad().copy_(g);  // the fp32 layout: .grad is the buffer's view
    }
    adamw.step(lr);
    torch_adamw.step();
  }
  CHECK(adamw.steps() == 5);
  for (auto& [name, p] : theirs) {
    INFO(name);
    REQUIRE_CLOSE(mine.at(name).detach(), p.detach(), 1e-6);
  }
}

TEST_CASE("fp32 layout: parameters and gradients are views of the flat buffers, micro-batches accumulate there",
          "[train][adamw]") {
  auto model = tiny_model(4), reference = tiny_model(4);
  granite::ParameterBuffers params(*model, granite::OptimizerConfig{}, torch::kFloat);
  CHECK_FALSE(params.mixed());
  const auto mine = named(*model);
  int64_t total = 0;
  for (const auto& g : params.groups())
    for (const auto& s : g.slots) {
      const torch::Tensor& p = mine.at(s.name);
      CHECK(p.data_ptr() == g.view(g.master, s).data_ptr());
      CHECK(p.grad().data_ptr() == g.view(g.grad, s).data_ptr());
      total += s.numel;
    }
  int64_t expected_total = 0;
  for (const auto& p : model->parameters()) expected_total += p.numel();
  CHECK(total == expected_total);
  CHECK(params.numel() == expected_total);

  const auto data = code_batches(2, 2, 32);
  for (const auto& b : data) {
    forward_scalar(*model, b).backward();
    forward_scalar(*reference, b).backward();
  }
  const auto theirs = named(*reference);
  for (const auto& g : params.groups())
    for (const auto& s : g.slots) {
      INFO(s.name);
      CHECK(torch::equal(g.view(g.grad, s), theirs.at(s.name).grad()));
    }
  double norm2 = 0;
  for (const auto& [name, p] : theirs) norm2 += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  CHECK(params.grad_norm() == Approx(std::sqrt(norm2)).epsilon(1e-4));  // fp32 sums of squares
  params.zero_grad();
  CHECK(params.grad_norm() == 0.0);
}

TEST_CASE("mixed precision: bf16 compute, gradients of every micro-batch summed in fp32, no bf16 gradient kept",
          "[train][adamw]") {
  for (const bool checkpointing : {false, true}) {
    INFO("activation checkpointing " << checkpointing);
    auto model = tiny_model(6), reference = tiny_model(6);
    granite::ParameterBuffers params(*model, granite::OptimizerConfig{}, torch::kBFloat16);
    CHECK(params.mixed());
    reference->to(torch::kBFloat16);
    model->set_activation_checkpointing(checkpointing);
    reference->set_activation_checkpointing(checkpointing);
    const auto mine = named(*model), theirs = named(*reference);
    for (const auto& g : params.groups()) {
      CHECK(g.master.scalar_type() == torch::kFloat);
      CHECK(g.grad.scalar_type() == torch::kFloat);
      for (const auto& s : g.slots) {
        CHECK(mine.at(s.name).scalar_type() == torch::kBFloat16);
        CHECK(torch::equal(mine.at(s.name), g.view(g.master, s).to(torch::kBFloat16)));
      }
    }
    const auto data = code_batches(3, 2, 32);
    std::map<std::string, torch::Tensor> expected;  // sum over micro-batches, in fp32, of the bf16 gradients
    for (const auto& b : data) {
      forward_scalar(*model, b).backward();
      for (auto& [name, p] : theirs) p.mutable_grad().reset();
      forward_scalar(*reference, b).backward();
      for (const auto& [name, p] : theirs) {
        auto [it, fresh] = expected.try_emplace(name, torch::zeros(p.sizes(), torch::kFloat));
        it->second.add_(p.grad());
      }
    }
    for (const auto& g : params.groups())
      for (const auto& s : g.slots) {
        INFO(s.name);
        CHECK_FALSE(mine.at(s.name).grad().defined());
        CHECK(torch::equal(g.view(g.grad, s), expected.at(s.name)));
      }
  }
}

TEST_CASE("mixed precision keeps updates below bf16 resolution, pure bf16 loses them", "[train][adamw]") {
  granite::OptimizerConfig c;
  c.weight_decay = 0;
  auto mixed_model = tiny_model(8), pure_model = tiny_model(8);
  granite::ParameterBuffers mixed(*mixed_model, c, torch::kBFloat16);
  granite::ParameterBuffers pure(*pure_model, c, torch::kBFloat16, torch::kBFloat16);
  CHECK_FALSE(pure.mixed());
  granite::AdamW mixed_adamw(mixed, c), pure_adamw(pure, c);
  const auto before_mixed = mixed.groups()[0].master.clone(), before_pure = pure.groups()[0].master.clone();
  for (int step = 0; step < 10; ++step) {
    for (auto* p : {&mixed, &pure})
      for (auto& g : p->groups()) g.grad.fill_(1.0);
    mixed_adamw.step(1e-6);  // Adam's first steps move each weight by ~lr: far below bf16's resolution at |w| > 0.01
    pure_adamw.step(1e-6);
  }
  const auto& g = mixed.groups()[0];
  const auto large = before_mixed.abs() > 0.01;  // bf16 steps there: >= 2^-7 * 2^-7 = 6e-5
  REQUIRE(large.sum().item<int64_t>() > 1000);
  CHECK(torch::equal(pure.groups()[0].master.masked_select(large), before_pure.masked_select(large)));  // lost
  CHECK((g.master - before_mixed).abs().masked_select(large).min().item<double>() > 5e-6);  // ten updates kept
  CHECK(torch::equal(g.compute, g.master.to(torch::kBFloat16)));  // the model holds their rounding
}

TEST_CASE("mixed-precision training tracks fp32 training on real code", "[train][adamw]") {
  const auto data = code_batches(12, 4);
  auto fp32 = tiny_model(9), mixed = tiny_model(9);
  granite::test::check_mixed_tracks_fp32(granite::test::train_losses(*fp32, data, torch::kFloat),
                                         granite::test::train_losses(*mixed, data, torch::kBFloat16));
}

TEST_CASE("a mixed-precision checkpoint resumes exactly, a checkpoint of another precision policy is refused",
          "[train][adamw][checkpoint]") {
  const auto data = code_batches(4, 2);
  granite::TrainStepOptions so;
  so.lr = 3e-3;
  const std::string out = granite::test::process_scratch_dir("mixed_checkpoint");
  auto model = tiny_model(10);
  granite::ParameterBuffers params(*model, granite::OptimizerConfig{}, torch::kBFloat16);
  granite::AdamW adamw(params, granite::OptimizerConfig{});
  for (int i = 0; i < 2; ++i) granite::train_step(*model, params, adamw, {data[i]}, so);
  const std::string dir = granite::save_checkpoint(out, 2, *model, adamw, granite::Json{{"step", 2}}, {}, 1);
  const torch::Tensor saved_master = params.groups()[0].master.clone();
  std::vector<double> uninterrupted;
  for (int i = 2; i < 4; ++i) uninterrupted.push_back(granite::train_step(*model, params, adamw, {data[i]}, so).loss);

  auto resumed = tiny_model(11);  // other initial weights: everything must come from the checkpoint
  granite::ParameterBuffers resumed_params(*resumed, granite::OptimizerConfig{}, torch::kBFloat16);
  granite::AdamW resumed_adamw(resumed_params, granite::OptimizerConfig{});
  CHECK(granite::load_checkpoint(dir, *resumed, resumed_adamw)["step"] == 2);
  CHECK(resumed_adamw.steps() == 2);
  for (int i = 2; i < 4; ++i)
    CHECK(granite::train_step(*resumed, resumed_params, resumed_adamw, {data[i]}, so).loss == uninterrupted[i - 2]);
  for (size_t g = 0; g < params.groups().size(); ++g) {
    CHECK(torch::equal(resumed_params.groups()[g].master, params.groups()[g].master));
    CHECK(torch::equal(resumed_params.groups()[g].compute, params.groups()[g].compute));
  }

  auto fp32 = tiny_model(12);
  granite::ParameterBuffers fp32_params(*fp32, granite::OptimizerConfig{}, torch::kFloat);
  granite::AdamW fp32_adamw(fp32_params, granite::OptimizerConfig{});
  REQUIRE_THROWS_WITH(granite::load_checkpoint(dir, *fp32, fp32_adamw),
                      Contains("optimizer.safetensors") && Contains("precision policy"));
  CHECK(granite::load_master_weights(dir, fp32_params));  // a new run may start from its fp32 master weights
  CHECK(torch::equal(fp32_params.groups()[0].master, saved_master));
}
