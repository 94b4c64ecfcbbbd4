// The overlapped gradient all-reduce, in one process over a one-rank Gloo group: every bucket starts during the
// last micro-batch's backward (none waits for finish()), buckets cover the flat buffers exactly at parameter
// boundaries, and the step is the plain step's (a one-rank sum is the identity). The two-rank equivalence with one
// process is tests/apps/test_distributed.cpp.
#include <catch2/catch.hpp>

#include "granite/dist/gradient_sync.h"
#include "granite/dist/launcher.h"
#include "granite/models/factory.h"
#include "granite/train/train_step.h"
#include "support/real_code.h"
#include "support/tensor_match.h"

TEST_CASE("gradient buckets are all-reduced during backward and change nothing", "[dist][gloo]") {
  granite::LaunchEnv env;
  env.source = "test";
  env.master_port = granite::free_tcp_port();
  granite::Communicator comm(env, torch::Device(torch::kCPU), std::chrono::seconds(30));
  const auto data = granite::test::code_batches(4, 2);
  granite::ModelConfig cfg = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  for (const bool mixed : {false, true}) {
    INFO("mixed precision " << mixed);
    std::vector<torch::Tensor> final_master[2];
    std::vector<double> losses[2];
    for (int synced = 0; synced < 2; ++synced) {
      torch::manual_seed(21);
      auto model = granite::make_model(cfg);
      model->set_activation_checkpointing(synced == 1);  // the hooks also fire inside the recomputed blocks
      granite::ParameterBuffers params(*model, granite::OptimizerConfig{}, mixed ? torch::kBFloat16 : torch::kFloat);
      granite::AdamW adamw(params, granite::OptimizerConfig{});
      std::unique_ptr<granite::GradientSync> sync;
      granite::TrainStepOptions so;
      so.lr = 3e-3;
      if (synced) {
        sync = std::make_unique<granite::GradientSync>(params, comm, /*bucket_bytes=*/16 << 10);
        so.comm = &comm;
        so.grad_sync = sync.get();
        // Buckets tile each group's buffer.
        CHECK(sync->buckets() > 10);
      }
      for (size_t i = 0; i + 1 < data.size(); i += 2) {
        losses[synced].push_back(granite::train_step(*model, params, adamw, {data[i], data[i + 1]}, so).loss);
        if (sync) CHECK(sync->started_in_backward() == sync->buckets());
      }
      for (const auto& g : params.groups()) final_master[synced].push_back(g.master.clone());
    }
    CHECK(losses[0] == losses[1]);
    for (size_t g = 0; g < final_master[0].size(); ++g) REQUIRE_CLOSE(final_master[1][g], final_master[0][g], 0.0);
  }
}
