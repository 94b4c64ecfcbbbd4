#include "granite/train/training_run.h"

#include <ATen/CPUGeneratorImpl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>

#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/device_memory.h"
#include "granite/core/dtype.h"
#include "granite/core/file_status.h"
#include "granite/core/progress.h"
#include "granite/io/pretrained.h"
#include "granite/models/factory.h"
#include "granite/train/checkpoint.h"
#include "granite/train/init.h"
#include "granite/train/metrics_log.h"
#include "granite/train/train_step.h"

namespace granite {

namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// SIGTERM / SIGINT set a flag the loop reads between steps; the previous handlers come back afterwards.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, &old_term_);
    ::sigaction(SIGINT, &sa, &old_int_);
  }
  ~StopSignals() {
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGINT, &old_int_, nullptr);
  }
  int received() const { return g_stop_signal.load(); }

 private:
  struct sigaction old_term_ {}, old_int_ {};
};

std::string to_hex(const torch::Tensor& bytes) {
  static const char* digits = "0123456789abcdef";
  auto t = bytes.contiguous();
  const uint8_t* p = t.data_ptr<uint8_t>();
  std::string out;
  for (int64_t i = 0; i < t.numel(); ++i) out += digits[p[i] >> 4], out += digits[p[i] & 15];
  return out;
}

torch::Tensor from_hex(const std::string& hex, const std::string& where) {
  GRANITE_CHECK(hex.size() % 2 == 0, where, ": RNG state is not a hex string");
  auto t = torch::empty({int64_t(hex.size() / 2)}, torch::kUInt8);
  uint8_t* p = t.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    GRANITE_FAIL(where, ": RNG state is not a hex string");
  };
  for (size_t i = 0; i < hex.size(); i += 2) p[i / 2] = uint8_t(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  return t;
}

// metrics.jsonl keeps only the lines of steps <= `step` (a resumed run then appends what the interrupted one lost).
void cut_metrics(const std::string& path, int64_t step) {
  if (!path_exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step")) continue;  // a torn last line
    if (j["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

std::vector<std::string> tokenizer_files(const std::string& tokenizer) {
  std::vector<std::string> files{tokenizer};
  const size_t slash = tokenizer.rfind('/');
  const std::string config = (slash == std::string::npos ? std::string(".") : tokenizer.substr(0, slash)) +
                             "/tokenizer_config.json";
  if (path_exists(config)) files.push_back(config);
  return files;
}

// Pretraining's packed loader as a batch source.
class PackedLoaderSource : public BatchSource {
 public:
  PackedLoaderSource(const LoaderConfig& config, const Tokenizer& tokenizer, int rank, int world, LoaderState state)
      : loader_(config, tokenizer, rank, world, std::move(state)) {}
  PackedBatch next() override { return loader_.next(); }
  Json state() const override { return to_json(loader_.state()); }

 private:
  PackedLoader loader_;
};

}  // namespace

double training_flops_per_token(int64_t parameters, int64_t layers, int64_t hidden, int64_t seq_len) {
  return 6.0 * double(parameters) + 12.0 * double(layers) * double(hidden) * double(seq_len);
}

RunResult run_training(const TrainConfig& config, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Communicator* comm = options.comm;
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  const bool main_rank = rank == 0;
  const torch::Device device = comm ? rank_device(config.device, comm->env()) : torch::Device(config.device);
  auto tokenizer = load_tokenizer(config.tokenizer);
  // Where to start.
  std::string resume_from;
  const auto latest = latest_checkpoint(config.output_dir);
  if (options.resume == "auto") {
    if (latest) resume_from = *latest;
  } else if (options.resume == "never") {
    GRANITE_CHECK(!latest, config.output_dir, " already holds checkpoints (latest ", *latest,
                  "); resume with --resume auto, or choose a new --output-dir (nothing is overwritten)");
  } else {
    resume_from = options.resume;
  }

  torch::manual_seed(config.seed);
  CausalLM model;
  if (config.init_from.empty()) {
    model = make_model(load_model_config(config.model_config), /*initialize=*/false);
    init_for_pretraining(*model);  // N(0, 0.02), residual projections scaled by 1/sqrt(2L)
  } else {
    model = load_model_or_checkpoint(config.init_from);
  }
  model->set_activation_checkpointing(config.activation_checkpointing);
  model->set_neftune_alpha(config.neftune_alpha);
  // The precision policy: parameters in the compute dtype for forward/backward, master weights, gradients and
  // AdamW moments in the master dtype (ParameterBuffers), replicated on every rank or sharded over them.
  const bool shard_optimizer = comm && config.sharding == "optimizer";
  const bool fully_sharded = comm && config.sharding == "full";
  const c10::ScalarType compute_dtype = *dtype_from_name(config.dtype);
  const c10::ScalarType master_dtype = *dtype_from_name(config.master_dtype);
  std::unique_ptr<ParameterBuffers> params_holder;
  if (fully_sharded) {
    // The model stays in host memory, initialised or loaded in fp32; its blocks move to the device one by one as
    // shards (rank 0's values).
    params_holder = std::make_unique<ParameterBuffers>(*model, config.optimizer, compute_dtype, master_dtype, *comm,
                                                       device);
  } else {
    model->to(device, torch::kFloat);  // initialised (or loaded) in fp32: the master weights start exact
    if (comm) {  // identical replicas, whatever each rank's initialisation did
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) comm->broadcast(p.detach(), 0, "initial weights");
    }
    params_holder = std::make_unique<ParameterBuffers>(*model, config.optimizer, compute_dtype, master_dtype,
                                                       shard_optimizer ? world : 1, shard_optimizer ? rank : 0);
  }
  ParameterBuffers& params = *params_holder;
  AdamW optimizer(params, config.optimizer, shard_optimizer ? comm : nullptr);
  if (!config.init_from.empty() && load_master_weights(config.init_from, params) && options.progress && main_rank)
    std::fprintf(stderr, "fp32 master weights from the checkpoint %s\n", config.init_from.c_str());

  int64_t step = 0, tokens = 0, skipped = 0, consecutive_skips = 0;
  std::optional<Json> loader_state;
  RunResult result;
  if (!resume_from.empty()) {
    const Json state = resume_checkpoint(resume_from, *model, params, optimizer);
    const std::string where = resume_from + "/training_state.json";
    JsonReader r(state, where);
    step = r.required<int64_t>("step");
    tokens = r.required<int64_t>("tokens");
    skipped = r.required<int64_t>("skipped_steps");
    const Json* loader_json = r.raw("loader");
    GRANITE_CHECK(loader_json != nullptr, where, ": missing required key 'loader'");
    loader_state = *loader_json;
    {
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(from_hex(r.required<std::string>("rng_cpu"), where));
    }
    r.ignore("config");
    r.ignore("elapsed_s");
    r.finish();
    result.checkpoint = resume_from;
    if (options.progress && main_rank)
      std::fprintf(stderr, "resuming from %s (step %lld)\n", resume_from.c_str(), (long long)step);
  }
  std::unique_ptr<GradientSync> grad_sync;
  if (comm && !fully_sharded) grad_sync = std::make_unique<GradientSync>(params, *comm);
  // Everything is checked (model, checkpoint, data) before the output directory is touched.
  std::unique_ptr<BatchSource> loader;
  if (options.data.train) {
    loader = options.data.train(loader_state ? &*loader_state : nullptr, rank, world);
  } else {
    const LoaderState state = loader_state ? loader_state_from_json(*loader_state, resume_from + "/training_state.json: loader")
                                           : LoaderState{};
    loader = std::make_unique<PackedLoaderSource>(config.data, *tokenizer, rank, world, state);
  }
  const std::vector<std::string> checkpoint_files = [&] {
    std::vector<std::string> files = options.checkpoint_files;
    for (const std::string& f : tokenizer_files(config.tokenizer)) {
      const auto name = [](const std::string& p) { return p.substr(p.rfind('/') + 1); };
      bool replaced = false;
      for (const std::string& e : options.checkpoint_files) replaced = replaced || name(e) == name(f);
      if (!replaced) files.push_back(f);
    }
    return files;
  }();
  std::optional<MetricsLog> metrics;
  if (main_rank) {
    make_directories(config.output_dir);
    cut_metrics(config.output_dir + "/metrics.jsonl", step);
    write_file_atomic(config.output_dir + "/train_config.json", to_json(config).dump(2) + "\n");
    metrics.emplace(config.output_dir);
  }
  StopSignals signals;
  ProgressLine progress(stderr, 10, options.progress && main_rank);
  const ModelConfig& mc = model->config();
  int64_t parameter_count = 0;
  for (const auto& p : model->parameters()) parameter_count += p.numel();
  const double flops_per_token =
      training_flops_per_token(parameter_count, mc.num_hidden_layers, mc.hidden_size, config.data.seq_len);
  const double peak = config.peak_flops > 0 ? config.peak_flops : (device.is_cuda() ? 989e12 : 0.0);

  auto training_state = [&] {
    return Json{{"step", step},
                {"tokens", tokens},
                {"skipped_steps", skipped},
                {"loader", loader->state()},
                {"rng_cpu", to_hex(at::detail::getDefaultCPUGenerator().get_state())},
                {"config", to_json(config)},
                {"elapsed_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
  };
  auto save = [&] {
    if (fully_sharded) {  // every rank writes its shards
      result.checkpoint = save_sharded_checkpoint(config.output_dir, step, *model, params, optimizer, compute_dtype,
                                                  training_state(), {checkpoint_files},
                                                  config.keep_last, *comm);
      return;
    }
    // Rank 0 writes (replicas are identical); the others wait until it is complete.
    optimizer.gather_state();  // sharded moments made whole (a collective); nothing otherwise
    if (main_rank)
      result.checkpoint = save_checkpoint(config.output_dir, step, *model, optimizer, training_state(),
                                          {checkpoint_files}, config.keep_last);
    else
      result.checkpoint = checkpoint_dir(config.output_dir, step);
    optimizer.release_state();
    if (comm) comm->barrier("checkpoint save");
  };

  // Rows of logits per chunk of the fused loss: ~400 MB of fp32 logits on a GPU, ~50 MB on a CPU (where page
  // faults on large fresh buffers cost more than the smaller matrix products).
  const int64_t loss_chunk_rows = device.is_cuda() ? 2048 : std::max<int64_t>(64, (int64_t(1) << 24) / mc.vocab_size);
  const int64_t first_step = step;
  auto window_start = std::chrono::steady_clock::now();
  int64_t window_tokens = 0;
  while (step < config.steps) {
    std::vector<TrainBatch> micro;
    for (int64_t m = 0; m < config.grad_accum; ++m) micro.push_back(to_tensors(loader->next(), device));
    TrainStepOptions so;
    so.alpha = config.alpha;
    so.grad_clip = config.optimizer.grad_clip;
    so.lr = lr_at(step, config.schedule);
    so.document_mask = config.document_mask;
    so.loss_chunk_rows = loss_chunk_rows;
    so.comm = comm;
    so.grad_sync = grad_sync.get();
    const StepResult r = train_step(*model, params, optimizer, micro, so);
    ++step;
    tokens += r.tokens * world;  // ranks process equal shares
    window_tokens += r.tokens * world;
    if (r.skipped) {
      ++skipped;
      GRANITE_CHECK(++consecutive_skips < config.max_skipped_steps, "training stopped at step ", step, ": ",
                    consecutive_skips, " consecutive steps had a non-finite loss or gradient (loss ", r.loss,
                    ", grad norm ", r.grad_norm, "); the last good checkpoint is ",
                    result.checkpoint.empty() ? "none" : result.checkpoint);
    } else {
      consecutive_skips = 0;
    }
    result.last_loss = r.loss;
    if (step % config.log_every == 0 || step == config.steps) {
      const double window_s =
          std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count());
      const double tps = double(window_tokens) / window_s;
      const double mfu = peak > 0 ? tps * flops_per_token / (peak * world) : 0.0;  // tps counts every rank
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      Scalars values{{"loss", r.loss},
                     {"loss_clm", r.report.clm_loss()},
                     {"loss_fim", r.report.fim_loss()},
                     {"lr", so.lr},
                     {"grad_norm", r.grad_norm},
                     {"tokens", double(tokens)},
                     {"tokens_per_s", tps},
                     {"mfu", peak > 0 ? mfu : std::nan("")},
                     {"elapsed_s", elapsed},
                     {"skipped_steps", double(skipped)}};
      const std::optional<int64_t> peak_memory = peak_allocated_bytes(device);
      if (peak_memory) values.emplace_back("peak_memory_gib", double(*peak_memory) / double(1 << 30));
      if (metrics) metrics->log(step, values);
      const double eta = double(config.steps - step) * elapsed / double(std::max<int64_t>(1, step - first_step));
      char line[256];
      char mfu_text[32] = "", memory_text[32] = "";
      if (peak > 0) std::snprintf(mfu_text, sizeof mfu_text, "  MFU %.1f%%", 100 * mfu);
      if (peak_memory) std::snprintf(memory_text, sizeof memory_text, "  mem %.1f GiB", double(*peak_memory) / (1 << 30));
      char parts[64] = "";  // the objectives' losses when there are two of them
      if (r.report.tokens.fim > 0)
        std::snprintf(parts, sizeof parts, " (clm %.4f, fim %.4f)", r.report.clm_loss(), r.report.fim_loss());
      std::snprintf(line, sizeof line, "step %lld/%lld  loss %.4f%s  lr %.2e  %s tok/s%s%s  ETA %s", (long long)step,
                    (long long)config.steps, r.loss, parts, so.lr, format_si(tps).c_str(), mfu_text, memory_text,
                    format_duration(eta).c_str());
      progress.update(line);
      window_start = std::chrono::steady_clock::now();
      window_tokens = 0;
    }
    if (config.eval_every > 0 && step % config.eval_every == 0) {
      std::vector<TrainBatch> eval_batches;
      if (options.data.eval) {
        for (const PackedBatch& b : options.data.eval()) {
          if (int64_t(eval_batches.size()) == config.eval_batches) break;
          eval_batches.push_back(to_tensors(b, device));
        }
      } else {
        PackedLoader eval_loader(*config.eval_data, *tokenizer);
        for (int64_t b = 0; b < config.eval_batches; ++b) eval_batches.push_back(to_tensors(eval_loader.next(), device));
      }
      const LossReport report = evaluate_loss(*model, eval_batches, config.alpha, config.document_mask);
      if (metrics)
        metrics->log(step, {{"val_loss", report.loss(config.alpha)},
                            {"val_loss_clm", report.clm_loss()},
                            {"val_loss_fim", report.fim_loss()}});
    }
    // A signal to any rank stops all of them at the same step (a rank that stopped alone would hang the others).
    bool stop = signals.received() != 0;
    if (comm) stop = comm->sum({stop ? 1.0 : 0.0}, "stop signal")[0] > 0;
    if ((config.save_every > 0 && step % config.save_every == 0) || (step == config.steps && config.save_at_end) ||
        stop)
      save();
    if (stop) {
      result.interrupted = true;
      if (options.progress && main_rank)
        std::fprintf(stderr, "\nsignal %d: saved %s, stopping\n", signals.received(), result.checkpoint.c_str());
      break;
    }
  }
  progress.finish("done: step " + std::to_string(step) + ", loss " + std::to_string(result.last_loss) +
                  (result.checkpoint.empty() ? "" : ", checkpoint " + result.checkpoint));
  result.step = step;
  result.skipped_steps = skipped;
  return result;
}

}  // namespace granite
