// Data-parallel pretraining on CPUs through Gloo, as a user runs it: granite-launch starts two granite-pretrain
// ranks that must train exactly like one process with the same global batch (same losses and weights up to fp32
// summation order), with or without the sharded optimizer; a two-rank checkpoint resumes on one rank; a failing
// rank stops the job with its status; a rank that never arrives is an error after the timeout.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <torch/cuda.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "granite/core/json.h"
#include "granite/core/file_status.h"
#include "granite/dist/launcher.h"
#include "granite/io/safetensors.h"
#include "support/paths.h"
#include "support/real_code.h"
#include "support/shell.h"

using Catch::Matchers::Contains;
using granite::Json;
using granite::test::quoted;
using granite::test::shell;
using granite::test::source_path;

namespace {

std::string app(const char* name) { return std::string(GRANITE_BINARY_DIR) + "/apps/" + name; }

// A tiny config over real code; micro_batch and the output directory come from the command line.
const std::string& config() {
  static const std::string path = [] {
    const std::string root = granite::test::process_scratch_dir("distributed_setup");
    const std::string shards = root + "/shards";
    ::mkdir(shards.c_str(), 0755);
    granite::test::write_code_shard(shards, 8000, 30);
    const Json c{
        {"model", source_path("configs/models/tiny-llama.json")},
        {"tokenizer", source_path("data/tokenizers/starcoder/tokenizer.json")},
        {"data", {{"sources", {{{"paths", {shards}}}}}, {"seq_len", 32}, {"micro_batch", 2}, {"fim_rate", 0.5}}},
        {"schedule", {{"kind", "cosine"}, {"peak_lr", 3e-3}, {"warmup_steps", 2}, {"decay_steps", 10}, {"min_lr", 3e-4}}},
        {"train", {{"steps", 6}, {"grad_accum", 2}, {"log_every", 1}}},
        {"checkpoint", {{"save_every", 3}, {"keep_last", 3}}},
        {"output_dir", root + "/unused"}};
    std::ofstream(root + "/tiny.json") << c.dump(2);
    return root + "/tiny.json";
  }();
  return path;
}

// granite-pretrain on `ranks` processes (1: run directly), `micro_batch` rows per rank.
granite::test::ShellRun pretrain(int ranks, int micro_batch, const std::string& output_dir,
                                 const std::string& extra = "") {
  const std::string args = " --quiet --config " + quoted(config()) + " --output-dir " + quoted(output_dir) +
                           " --set data.micro_batch=" + std::to_string(micro_batch) + " --dist-timeout 60 " + extra;
  const std::string prefix = ranks == 1 ? "" : quoted(app("granite-launch")) + " --nproc-per-node " +
                                                   std::to_string(ranks) + " -- ";
  return shell("OMP_NUM_THREADS=1 " + prefix + quoted(app("granite-pretrain")) + args + " 2>&1");
}

std::vector<Json> metrics(const std::string& dir) {
  std::vector<Json> out;
  for (const std::string& line : granite::test::read_lines(dir + "/metrics.jsonl")) out.push_back(Json::parse(line));
  return out;
}

std::string step_dir(const std::string& run, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "/checkpoints/step-%08lld", static_cast<long long>(step));
  return run + name;
}

// A checkpoint's model weights: model.safetensors, or (fully sharded runs) what granite-convert consolidates from
// the shards, in float32 (the master weights).
std::map<std::string, torch::Tensor> checkpoint_weights(const std::string& dir) {
  if (granite::path_exists(dir + "/model.safetensors")) return granite::load_safetensors(dir + "/model.safetensors");
  const std::string out = dir + ".consolidated";
  const auto r = shell(quoted(app("granite-convert")) + " --model " + quoted(dir) + " --output " + quoted(out) +
                       " --dtype float32 --overwrite 2>&1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  return granite::load_safetensors(out + "/model.safetensors");
}

void require_same_training(const std::string& a, const std::string& b, int64_t last_step) {
  const auto ma = metrics(a), mb = metrics(b);
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    INFO("step " << ma[i]["step"] << ": " << ma[i].dump() << " vs " << mb[i].dump());
    CHECK(ma[i]["step"] == mb[i]["step"]);
    for (const char* key : {"loss", "loss_clm", "loss_fim", "grad_norm"})
      CHECK(ma[i][key].get<double>() == Approx(mb[i][key].get<double>()).epsilon(1e-5));
    CHECK(ma[i]["tokens"] == mb[i]["tokens"]);
  }
  const auto wa = checkpoint_weights(step_dir(a, last_step)), wb = checkpoint_weights(step_dir(b, last_step));
  REQUIRE(wa.size() == wb.size());
  for (const auto& [key, t] : wa) {
    INFO(key);
    CHECK((t.to(torch::kFloat) - wb.at(key).to(torch::kFloat)).abs().max().item<double>() <= 1e-5);
  }
}

// Two ranks (`two_rank_settings`) stopped after step 3, then one rank (micro-batch 4, no sharding) resuming from
// that checkpoint, must reproduce `reference`: an uninterrupted run of the same global batch.
void require_resumes_on_one_rank(const std::string& dir, const std::string& reference,
                                 const std::string& two_rank_settings = "") {
  const auto first = pretrain(2, 2, dir, two_rank_settings + " --max-steps 3");
  INFO(first.output);
  REQUIRE(first.status == 0);
  const auto second = pretrain(1, 4, dir);  // --resume auto: from step 3
  INFO(second.output);
  REQUIRE(second.status == 0);
  require_same_training(reference, dir, 6);
}

}  // namespace

TEST_CASE("two Gloo ranks train like one process with the same global batch", "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_equivalence");
  const auto one = pretrain(1, 4, root + "/one");
  REQUIRE(one.status == 0);
  const auto two = pretrain(2, 2, root + "/two");
  INFO(two.output);
  REQUIRE(two.status == 0);
  CHECK(two.output.find("\"step\":6") != std::string::npos);  // rank 0 reports once
  require_same_training(root + "/one", root + "/two", 6);
}

TEST_CASE("a two-rank checkpoint resumes on one rank", "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_resume");
  REQUIRE(pretrain(1, 4, root + "/uninterrupted").status == 0);
  require_resumes_on_one_rank(root + "/resumed", root + "/uninterrupted");
}

TEST_CASE("two ranks with the sharded optimizer (ZeRO-1) train like one process, and resume on one rank",
          "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_zero1");
  REQUIRE(pretrain(1, 4, root + "/one").status == 0);
  const auto sharded = pretrain(2, 2, root + "/zero1", "--set train.sharding=optimizer");
  INFO(sharded.output);
  REQUIRE(sharded.status == 0);
  require_same_training(root + "/one", root + "/zero1", 6);
  // The checkpoint holds whole moments: a sharded 2-rank run continues on one rank without sharding.
  require_resumes_on_one_rank(root + "/resumed", root + "/one", "--set train.sharding=optimizer");
}

TEST_CASE("with mixed precision the sharded optimizer (fp32 master sharded too) equals the unsharded one",
          "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_zero1_mixed");
  const std::string bf16 = "--set train.dtype=bfloat16 ";
  REQUIRE(pretrain(2, 2, root + "/plain", bf16).status == 0);
  const auto sharded = pretrain(2, 2, root + "/sharded", bf16 + "--set train.sharding=optimizer");
  INFO(sharded.output);
  REQUIRE(sharded.status == 0);
  require_same_training(root + "/plain", root + "/sharded", 6);
  const auto state_a = granite::load_safetensors(root + "/plain/checkpoints/step-00000006/optimizer.safetensors");
  const auto state_b = granite::load_safetensors(root + "/sharded/checkpoints/step-00000006/optimizer.safetensors");
  REQUIRE(state_a.size() == state_b.size());
  for (const auto& [key, t] : state_a) {  // whole fp32 master and moments, gathered from the shards
    INFO(key);
    CHECK((t - state_b.at(key)).abs().max().item<double>() <= 1e-6);
  }
  // Interrupted at step 3 and resumed, sharded: the same run.
  REQUIRE(pretrain(2, 2, root + "/resumed", bf16 + "--set train.sharding=optimizer --max-steps 3").status == 0);
  REQUIRE(pretrain(2, 2, root + "/resumed", bf16 + "--set train.sharding=optimizer").status == 0);
  require_same_training(root + "/sharded", root + "/resumed", 6);
}

TEST_CASE("fully sharded ranks (2 and 3, with and without activation checkpointing) train like one process",
          "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_fsdp");
  const std::string full = "--set train.sharding=full ";
  REQUIRE(pretrain(1, 4, root + "/one4").status == 0);
  const auto two = pretrain(2, 2, root + "/full2", full);
  INFO(two.output);
  REQUIRE(two.status == 0);
  // Each rank wrote its own shards; the directory is not a model directory until consolidated.
  CHECK(granite::path_exists(step_dir(root + "/full2", 6) + "/state-00001-of-00002.safetensors"));
  CHECK_FALSE(granite::path_exists(step_dir(root + "/full2", 6) + "/model.safetensors"));
  require_same_training(root + "/one4", root + "/full2", 6);
  // granite-generate reads such a checkpoint as it is, and continues as the consolidated model does.
  const auto generate = [&](const std::string& dir) {
    return shell(quoted(app("granite-generate")) + " --model " + quoted(dir) +
                 " --prompt-ids 5,17,42 --max-new-tokens 6 --greedy 2>&1");
  };
  const auto direct = generate(step_dir(root + "/full2", 6));
  INFO(direct.output);
  REQUIRE(direct.status == 0);
  CHECK(direct.output == generate(step_dir(root + "/full2", 6) + ".consolidated").output);
  const auto checkpointed = pretrain(2, 2, root + "/full2ac", full + "--set train.activation_checkpointing=true");
  INFO(checkpointed.output);
  REQUIRE(checkpointed.status == 0);
  require_same_training(root + "/one4", root + "/full2ac", 6);
  // Three ranks: unit lengths that do not divide by the world size (padding).
  REQUIRE(pretrain(1, 6, root + "/one6").status == 0);
  const auto three = pretrain(3, 2, root + "/full3", full);
  INFO(three.output);
  REQUIRE(three.status == 0);
  require_same_training(root + "/one6", root + "/full3", 6);
}

TEST_CASE("a fully sharded checkpoint resumes on another number of ranks, sharded or not", "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_fsdp_resume");
  const std::string full = "--set train.sharding=full ";
  REQUIRE(pretrain(1, 4, root + "/uninterrupted").status == 0);
  // 2 sharded ranks -> 1 process without sharding.
  require_resumes_on_one_rank(root + "/to_one", root + "/uninterrupted", full);
  // 2 sharded ranks -> 4 sharded ranks (one row each: the same global batch).
  REQUIRE(pretrain(2, 2, root + "/to_four", full + "--max-steps 3").status == 0);
  const auto four = pretrain(4, 1, root + "/to_four", full);
  INFO(four.output);
  REQUIRE(four.status == 0);
  require_same_training(root + "/uninterrupted", root + "/to_four", 6);
  // A sharded checkpoint missing a rank's file is refused, naming the file.
  const std::string broken = root + "/broken";
  std::filesystem::copy(step_dir(root + "/to_four", 6), broken, std::filesystem::copy_options::recursive);
  std::filesystem::remove(broken + "/state-00002-of-00004.safetensors");
  const auto refused = shell(quoted(app("granite-convert")) + " --model " + quoted(broken) + " --output " +
                             quoted(root + "/broken.out") + " 2>&1");
  CHECK(refused.status != 0);
  CHECK_THAT(refused.output, Contains("state-00002-of-00004.safetensors is missing"));
  // 1 process (a whole checkpoint) -> 2 sharded ranks.
  REQUIRE(pretrain(1, 4, root + "/from_one", "--max-steps 3").status == 0);
  const auto sharded = pretrain(2, 2, root + "/from_one", full);
  INFO(sharded.output);
  REQUIRE(sharded.status == 0);
  require_same_training(root + "/uninterrupted", root + "/from_one", 6);
}

TEST_CASE("with mixed precision fully sharded ranks equal replicated ones (fp32 master included)",
          "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_fsdp_mixed");
  const std::string bf16 = "--set train.dtype=bfloat16 ";
  REQUIRE(pretrain(2, 2, root + "/plain", bf16).status == 0);
  const auto sharded = pretrain(2, 2, root + "/sharded", bf16 + "--set train.sharding=full");
  INFO(sharded.output);
  REQUIRE(sharded.status == 0);
  const auto ma = metrics(root + "/plain"), mb = metrics(root + "/sharded");
  REQUIRE(ma.size() == mb.size());
  for (size_t i = 0; i < ma.size(); ++i)
    CHECK(ma[i]["loss"].get<double>() == Approx(mb[i]["loss"].get<double>()).epsilon(1e-5));
  // The consolidated master (fp32) against the replicated run's fp32 master copies.
  const auto master = granite::load_safetensors(step_dir(root + "/plain", 6) + "/optimizer.safetensors");
  const auto consolidated = checkpoint_weights(step_dir(root + "/sharded", 6));
  for (const auto& [key, t] : consolidated) {
    INFO(key);
    CHECK((t - master.at("master." + key)).abs().max().item<double>() <= 1e-5);
  }
}

TEST_CASE("granite-launch sets torchrun's environment and stops the job when a rank fails", "[apps][dist]") {
  const auto env = shell(quoted(app("granite-launch")) +
                         " --nproc-per-node 3 -- sh -c 'echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE "
                         "lws=$LOCAL_WORLD_SIZE addr=$MASTER_ADDR port=$MASTER_PORT' 2>&1");
  REQUIRE(env.status == 0);
  for (const char* rank : {"rank=0 local=0", "rank=1 local=1", "rank=2 local=2"})
    CHECK_THAT(env.output, Contains(std::string(rank) + " world=3 lws=3 addr=127.0.0.1 port="));
  // Rank 1 fails at once; rank 0 would sleep for a minute: it is stopped, and the job's status is rank 1's.
  const auto start = std::chrono::steady_clock::now();
  const auto failed = shell(quoted(app("granite-launch")) +
                            " --nproc-per-node 2 --grace 2 -- sh -c 'if [ $RANK = 1 ]; then exit 3; fi; sleep 60' 2>&1");
  CHECK(failed.status == 3);
  CHECK_THAT(failed.output, Contains("rank 1") && Contains("status 3"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  // No program: a clear error.
  const auto none = shell(quoted(app("granite-launch")) + " --nproc-per-node 2 2>&1");
  CHECK(none.status != 0);
}

TEST_CASE("the NCCL path with one rank trains exactly like no process group, and sharded too",
          "[apps][dist][cuda]") {
  const std::string root = granite::test::scratch_dir("distributed_nccl");
  const auto direct = pretrain(1, 4, root + "/direct", "--set train.device=cuda");
  INFO(direct.output);
  REQUIRE(direct.status == 0);
  const auto launched = shell(quoted(app("granite-launch")) + " --nproc-per-node 1 -- " + quoted(app("granite-pretrain")) +
                              " --quiet --config " + quoted(config()) + " --output-dir " + quoted(root + "/nccl") +
                              " --set data.micro_batch=4 --set train.device=cuda 2>&1");
  INFO(launched.output);
  REQUIRE(launched.status == 0);
  const auto a = metrics(root + "/direct"), b = metrics(root + "/nccl");
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i)  // same arithmetic; CUDA kernels may sum in another order run to run
    CHECK(a[i]["loss"].get<double>() == Approx(b[i]["loss"].get<double>()).epsilon(1e-6));
  // Fully sharded (all-gathers and reduce-scatters into the same buffers) and ZeRO-1 through NCCL on every GPU
  // there is (up to 2): the same training as one process with the same global batch, up to the order of CUDA's sums.
  const int gpus = int(torch::cuda::device_count());
  const int ranks = gpus >= 2 ? 2 : 1;
  for (const std::string mode : {"full", "optimizer"}) {
    const auto sharded = shell(quoted(app("granite-launch")) + " --nproc-per-node " + std::to_string(ranks) + " -- " +
                               quoted(app("granite-pretrain")) + " --quiet --config " + quoted(config()) +
                               " --output-dir " + quoted(root + "/" + mode) + " --set data.micro_batch=" +
                               std::to_string(4 / ranks) + " --set train.device=cuda --set train.sharding=" + mode +
                               " 2>&1");
    INFO(mode << ": " << sharded.output);
    REQUIRE(sharded.status == 0);
    CHECK(sharded.output.find("destroy_process_group") == std::string::npos);  // NCCL shut down cleanly
    const auto c = metrics(root + "/" + mode);
    REQUIRE(a.size() == c.size());
    for (size_t i = 0; i < a.size(); ++i) {
      INFO("step " << a[i]["step"] << " on " << ranks << " GPU(s)");
      CHECK(a[i]["loss"].get<double>() == Approx(c[i]["loss"].get<double>()).epsilon(1e-5));
      CHECK(a[i]["grad_norm"].get<double>() == Approx(c[i]["grad_norm"].get<double>()).epsilon(1e-4));
    }
  }
}

TEST_CASE("a rank that never arrives is a clear error after the timeout, not a hang", "[apps][dist][gloo]") {
  const std::string root = granite::test::scratch_dir("distributed_timeout");
  const auto start = std::chrono::steady_clock::now();
  const auto r = shell("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                       std::to_string(granite::free_tcp_port()) + " " + quoted(app("granite-pretrain")) +
                       " --quiet --config " + quoted(config()) + " --output-dir " + quoted(root + "/run") +
                       " --dist-timeout 3 2>&1");
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Contains("rank 0 of 2") && Contains("3 s"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
}
