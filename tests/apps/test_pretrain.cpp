// granite-pretrain end to end on real code (tiny Granite, CPU): resume after SIGKILL at a random step gives exactly
// the uninterrupted run's metrics and final weights; SIGTERM saves and stops; bad input (missing data, a config typo,
// a checkpoint of another model, a corrupt checkpoint (weights or optimizer state), checkpoints in the way, a full disk while saving) gives clear
// errors and loses nothing.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "granite/core/json.h"
#include "granite/train/train_config.h"
#include "support/paths.h"
#include "support/real_code.h"
#include "support/shell.h"

using Catch::Matchers::Contains;
using granite::Json;
using granite::test::quoted;
using granite::test::scratch_dir;
using granite::test::shell;
using granite::test::source_path;

namespace {

std::string pretrain() { return std::string(GRANITE_BINARY_DIR) + "/apps/granite-pretrain"; }

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Shards of real code, and a tiny training config reading them (absolute paths: runs from any directory).
struct Setup {
  std::string shards, config;
};
const Setup& setup() {
  static const Setup s = [] {
    Setup out;
    const std::string root = granite::test::process_scratch_dir("pretrain_setup");
    out.shards = root + "/shards";
    ::mkdir(out.shards.c_str(), 0755);
    granite::test::write_code_shard(out.shards, 8000, 30);
    out.config = root + "/tiny.json";
    const Json config{
        {"model", source_path("configs/models/tiny-llama.json")},
        {"tokenizer", source_path("data/tokenizers/starcoder/tokenizer.json")},
        {"data", {{"sources", {{{"paths", {out.shards}}}}}, {"seq_len", 32}, {"micro_batch", 2}, {"fim_rate", 0.5}}},
        {"schedule", {{"kind", "cosine"}, {"peak_lr", 3e-3}, {"warmup_steps", 2}, {"decay_steps", 10}, {"min_lr", 3e-4}}},
        {"train", {{"steps", 12}, {"grad_accum", 2}, {"log_every", 1}}},
        {"checkpoint", {{"save_every", 2}, {"keep_last", 2}}},
        {"output_dir", root + "/unused"}};
    std::ofstream(out.config) << config.dump(2);
    return out;
  }();
  return s;
}

granite::test::ShellRun run(const std::string& output_dir, const std::string& extra = "") {
  return shell(quoted(pretrain()) + " --quiet --config " + quoted(setup().config) + " --output-dir " +
               quoted(output_dir) + " " + extra + " 2>&1");
}

// metrics.jsonl without the fields that measure time.
std::vector<Json> metrics(const std::string& output_dir) {
  std::vector<Json> out;
  for (const std::string& line : granite::test::read_lines(output_dir + "/metrics.jsonl")) {
    Json j = Json::parse(line);
    for (const char* key : {"tokens_per_s", "elapsed_s", "mfu"}) j.erase(key);
    out.push_back(j);
  }
  return out;
}

pid_t spawn(const std::string& output_dir, const std::string& log) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(fileno(stdout), 2);
    const std::string program = pretrain(), config = setup().config;
    ::execl(program.c_str(), program.c_str(), "--quiet", "--config", config.c_str(), "--output-dir", output_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

size_t metric_lines(const std::string& output_dir) {
  std::ifstream in(output_dir + "/metrics.jsonl");
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty() && line.back() == '}';
  return n;
}

// Sends `sig` once metrics.jsonl has `lines` lines; returns the exit status (or -signal).
int signal_at(pid_t pid, const std::string& output_dir, size_t lines, int sig) {
  for (int i = 0; i < 120000; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return 1000;  // finished first
    if (metric_lines(output_dir) >= lines) {
      ::kill(pid, sig);
      ::waitpid(pid, &status, 0);
      return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  FAIL("granite-pretrain did not reach step " << lines << " in 120 s");
  return 0;
}

const std::string& uninterrupted() {
  static const std::string dir = [] {
    const std::string d = granite::test::process_scratch_dir("pretrain_uninterrupted") + "/run";
    const auto r = run(d);
    INFO(r.output);
    REQUIRE(r.status == 0);
    return d;
  }();
  return dir;
}

}  // namespace

TEST_CASE("granite-pretrain killed with SIGKILL at a random step resumes to the uninterrupted run exactly",
          "[apps][pretrain][resume]") {
  const auto reference = metrics(uninterrupted());
  REQUIRE(reference.size() == 12);
  CHECK(reference.back()["loss"].get<double>() < reference.front()["loss"].get<double>());
  const std::string final_weights = read_file(uninterrupted() + "/checkpoints/step-00000012/model.safetensors");
  REQUIRE(!final_weights.empty());

  std::random_device entropy;
  const size_t kill_at = 2 + entropy() % 9;  // after step 2..10
  INFO("SIGKILL after step " << kill_at);
  const std::string dir = scratch_dir("pretrain_killed") + "/run";
  REQUIRE(signal_at(spawn(dir, dir + ".log"), dir, kill_at, SIGKILL) == -SIGKILL);
  const auto resumed = run(dir);
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(metrics(dir) == reference);
  CHECK(read_file(dir + "/checkpoints/step-00000012/model.safetensors") == final_weights);
  CHECK(read_file(dir + "/checkpoints/step-00000012/training_state.json").size() > 0);
  // keep_last 2: only the last two checkpoints remain.
  CHECK(exists(dir + "/checkpoints/step-00000010"));
  CHECK_FALSE(exists(dir + "/checkpoints/step-00000008"));
}

TEST_CASE("SIGTERM saves a checkpoint and stops cleanly, the run then resumes", "[apps][pretrain][resume]") {
  const std::string dir = scratch_dir("pretrain_sigterm") + "/run";
  REQUIRE(signal_at(spawn(dir, dir + ".log"), dir, 3, SIGTERM) == 0);
  const Json last = Json::parse(granite::test::read_lines(dir + ".log").back());
  CHECK(last["interrupted"] == true);
  const int64_t step = last["step"];
  CHECK(exists(dir + "/checkpoints/" + [&] {
    char name[32];
    std::snprintf(name, sizeof name, "step-%08lld", (long long)step);
    return std::string(name);
  }()));
  const auto resumed = run(dir);
  REQUIRE(resumed.status == 0);
  CHECK(metrics(dir) == metrics(uninterrupted()));
}

TEST_CASE("granite-pretrain rejects bad input with clear errors and loses nothing", "[apps][pretrain][errors]") {
  const std::string root = scratch_dir("pretrain_errors");
  SECTION("missing data directory: nothing is written") {
    const auto r = run(root + "/a", "--data " + quoted(root + "/no-such-dir"));
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("no-such-dir"));
    CHECK_FALSE(exists(root + "/a"));
  }
  SECTION("an empty data directory") {
    ::mkdir((root + "/empty").c_str(), 0755);
    const auto r = run(root + "/b", "--data " + quoted(root + "/empty"));
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("no token shards"));
  }
  SECTION("a config typo names the key") {
    const auto r = run(root + "/c", "--set train.stepz=3");
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("stepz"));
  }
  SECTION("checkpoints in the way of --resume never; a checkpoint of another model; a corrupt checkpoint") {
    const std::string dir = root + "/d";
    REQUIRE(run(dir, "--max-steps 2").status == 0);
    const std::string ckpt = dir + "/checkpoints/step-00000002";
    auto r = run(dir, "--resume never --max-steps 4");
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("already holds checkpoints"));
    // Another model: the GPT-BigCode tiny config against this checkpoint.
    r = run(root + "/e", "--set model=" + source_path("configs/models/tiny-gpt-bigcode.json") + " --resume " +
                             quoted(ckpt));
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("different model config"));
    // Corrupt weights: cut the safetensors file in half.
    const std::string weights = ckpt + "/model.safetensors";
    const std::string bytes = read_file(weights);
    std::ofstream(weights, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size() / 2));
    r = run(dir, "--max-steps 4");
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("model.safetensors"));
    // Intact weights, corrupt optimizer state.
    std::ofstream(weights, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
    const std::string state = ckpt + "/optimizer.safetensors";
    const std::string state_bytes = read_file(state);
    std::ofstream(state, std::ios::binary | std::ios::trunc)
        .write(state_bytes.data(), std::streamsize(state_bytes.size() - 100));
    r = run(dir, "--max-steps 4");
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("optimizer.safetensors"));
  }
  SECTION("a full disk while saving leaves the earlier checkpoint intact") {
    const std::string dir = root + "/f";
    REQUIRE(run(dir, "--max-steps 2").status == 0);
    const std::string before = read_file(dir + "/checkpoints/step-00000002/model.safetensors");
    // 1 MB file-size limit: the next checkpoint's weights (12 MB) cannot be written.
    const auto r = shell("ulimit -f 1024; trap '' XFSZ; exec " + quoted(pretrain()) + " --quiet --config " +
                         quoted(setup().config) + " --output-dir " + quoted(dir) + " --max-steps 4 2>&1");
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("step-00000004"));
    CHECK(read_file(dir + "/checkpoints/step-00000002/model.safetensors") == before);
    CHECK_FALSE(exists(dir + "/checkpoints/step-00000004"));
    // And the run resumes from it once there is space.
    CHECK(run(dir, "--max-steps 4").status == 0);
  }
}

TEST_CASE("phase 2 starts from the phase-1 checkpoint with the 80/20 mixture and exponential decay",
          "[apps][pretrain][phase2]") {
  const std::string phase1 = uninterrupted() + "/checkpoints/step-00000012";
  const std::string dir = scratch_dir("pretrain_phase2") + "/run";
  const std::string sets = "--set model=null --set init_from=" + quoted(phase1) +
                           " --set 'data.sources=[{\"name\": \"code\", \"paths\": [\"" + setup().shards +
                           "\"], \"weight\": 0.8}, {\"name\": \"language\", \"paths\": [\"" + setup().shards +
                           "\"], \"weight\": 0.2}]'" +
                           " --set 'schedule={\"kind\": \"exponential\", \"peak_lr\": 0.002, \"decay_steps\": 10, "
                           "\"final_fraction\": 0.1, \"min_lr\": 0}' --max-steps 10 --save-every 5";
  const auto r = run(dir, sets);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const Json state = Json::parse(read_file(dir + "/checkpoints/step-00000010/training_state.json"));
  const Json& sources = state["loader"]["sources"];
  // 10 steps x 2 micro-batches x 2 rows = 40 sequences: 32 code, 8 language.
  CHECK(sources[0]["sequences"] == 32);
  CHECK(sources[1]["sequences"] == 8);
  const auto m = metrics(dir);
  REQUIRE(m.size() == 10);
  CHECK(m[0]["lr"].get<double>() == Approx(0.002));
  CHECK(m[5]["lr"].get<double>() == Approx(0.002 * std::sqrt(0.1)));
  // It continued the trained model: its first loss is near phase 1's last, far below a fresh model's ~ln(49152).
  CHECK(m[0]["loss"].get<double>() < std::log(49152.0) - 1.0);
}

TEST_CASE("every shipped training config parses, the Granite ones carry the paper's batch sizes and contexts",
          "[apps][pretrain][configs]") {
  struct Paper {
    const char* size;
    int64_t batch, context;
    double phase2_lr;
  };
  for (const Paper& p : {Paper{"3b", 2048, 2048, 3e-4}, Paper{"8b", 1024, 4096, 3e-4}, Paper{"20b", 576, 8192, 1.5e-4},
                         Paper{"34b", 532, 8192, 1.5e-4}}) {
    for (const char* phase : {"phase1", "phase2"}) {
      const std::string path = source_path(std::string("configs/train/granite-") + p.size + "-code-" + phase + ".json");
      INFO(path);
      const granite::TrainConfig c = granite::load_train_config(path);
      CHECK(c.data.micro_batch * c.grad_accum == p.batch);
      CHECK(c.data.seq_len == p.context);
      CHECK(c.data.fim.rate == 0.5);
      CHECK(c.optimizer.beta2 == 0.95);
      CHECK(c.optimizer.weight_decay == 0.1);
      if (std::string(phase) == "phase1") {
        CHECK(c.schedule.kind == granite::ScheduleKind::kCosine);
        CHECK(c.schedule.peak_lr == 3e-4);
        CHECK(c.schedule.min_lr == 3e-5);
        CHECK(c.schedule.warmup_steps == 2000);
        CHECK(c.data.sources.size() == 1);
      } else {
        CHECK(c.schedule.kind == granite::ScheduleKind::kExponential);
        CHECK(c.schedule.peak_lr == p.phase2_lr);
        CHECK(c.schedule.final_fraction == 0.1);
        REQUIRE(c.data.sources.size() == 2);
        CHECK(c.data.sources[0].weight == Approx(0.8));
        CHECK_FALSE(c.init_from.empty());
        // 500B tokens in phase 2.
        CHECK(double(c.steps) * double(p.batch * p.context) == Approx(500e9).epsilon(1e-5));
      }
    }
  }
  CHECK_NOTHROW(granite::load_train_config(source_path("configs/train/tiny-pretrain.json")));
}
