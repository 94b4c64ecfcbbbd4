#include "granite/data/packed_loader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "granite/core/check.h"
#include "granite/core/ordered_pipeline.h"
#include "granite/core/rng.h"
#include "granite/data/token_stream.h"

namespace granite {

namespace {

constexpr TokenId kIgnoreLabel = -100;  // HF / PyTorch cross-entropy's ignore_index
constexpr uint64_t kFimStream = 0x46494dull;  // "FIM": the generator family of the per-sequence FIM draws

// Megatron's blending rule (megatron/core/datasets/helpers.cpp, build_blending_indices): the next sequence comes from
// the source whose count lags its weight the most.
size_t next_source(const std::vector<double>& weights, const std::vector<int64_t>& counts, int64_t produced) {
  size_t best = 0;
  double best_error = -1e300;
  for (size_t s = 0; s < weights.size(); ++s) {
    const double error = weights[s] * double(produced + 1) - double(counts[s]);
    if (error > best_error) {
      best_error = error;
      best = s;
    }
  }
  return best;
}

struct Row {
  int64_t sequence = 0;  // global index g
  size_t source = 0;
  int64_t ordinal = 0;  // the source's k-th sequence
};

struct Plan {
  std::vector<Row> rows;
  int64_t next_sequence = 0;
  std::vector<int64_t> counts;  // mixture counts once next_sequence is reached
  PackedBatch batch;            // made by a worker
  FimStats fim;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Config and state as JSON

LoaderConfig loader_config_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  LoaderConfig c;
  const Json* sources = r.raw("sources");
  GRANITE_CHECK(sources && sources->is_array() && !sources->empty(), where,
                ": 'sources' must be a non-empty list of {\"paths\": [...], \"weight\": w}");
  for (size_t i = 0; i < sources->size(); ++i) {
    const std::string at = where + ": sources[" + std::to_string(i) + "]";
    JsonReader s((*sources)[i], at);
    DataSourceConfig source;
    if (s.has("path")) source.paths.push_back(s.required<std::string>("path"));
    if (const Json* paths = s.raw("paths"); paths && !paths->is_null()) {
      GRANITE_CHECK(paths->is_array(), at, ": 'paths' must be a list of strings, got ", json_preview(*paths));
      for (const Json& p : *paths) {
        GRANITE_CHECK(p.is_string(), at, ": 'paths' must be a list of strings, got ", json_preview(p));
        source.paths.push_back(p.get<std::string>());
      }
    }
    GRANITE_CHECK(!source.paths.empty(), at, ": needs \"path\" or \"paths\"");
    source.name = s.optional<std::string>("name", source.paths.front());
    source.weight = s.optional<double>("weight", 1.0);
    GRANITE_CHECK(source.weight > 0, at, ": weight must be > 0, got ", source.weight);
    s.finish();
    c.sources.push_back(source);
  }
  c.seq_len = r.optional<int64_t>("seq_len", c.seq_len);
  c.micro_batch = r.optional<int64_t>("micro_batch", c.micro_batch);
  c.seed = r.optional<uint64_t>("seed", c.seed);
  c.shuffle = r.optional<bool>("shuffle", c.shuffle);
  c.fim.rate = r.optional<double>("fim_rate", c.fim.rate);
  c.fim.spm_rate = r.optional<double>("fim_spm_rate", c.fim.spm_rate);
  const int64_t prefetch = r.optional<int64_t>("prefetch", c.prefetch);
  const int64_t workers = r.optional<int64_t>("workers", c.workers);
  GRANITE_CHECK(prefetch >= 1 && prefetch <= 1024, where, ": prefetch must be in [1, 1024], got ", prefetch);
  GRANITE_CHECK(workers >= 1 && workers <= 256, where, ": workers must be in [1, 256], got ", workers);
  c.prefetch = int(prefetch);
  c.workers = int(workers);
  r.finish();
  GRANITE_CHECK(c.seq_len >= 1, where, ": seq_len must be >= 1, got ", c.seq_len);
  GRANITE_CHECK(c.micro_batch >= 1, where, ": micro_batch must be >= 1, got ", c.micro_batch);
  GRANITE_CHECK(c.fim.rate >= 0 && c.fim.rate <= 1, where, ": fim_rate must be in [0, 1], got ", c.fim.rate);
  GRANITE_CHECK(c.fim.spm_rate >= 0 && c.fim.spm_rate <= 1, where, ": fim_spm_rate must be in [0, 1], got ",
                c.fim.spm_rate);
  return c;
}

Json to_json(const LoaderConfig& c) {
  Json sources = Json::array();
  for (const auto& s : c.sources) sources.push_back({{"name", s.name}, {"paths", s.paths}, {"weight", s.weight}});
  return {{"sources", sources},         {"seq_len", c.seq_len},       {"micro_batch", c.micro_batch},
          {"seed", c.seed},             {"shuffle", c.shuffle},       {"fim_rate", c.fim.rate},
          {"fim_spm_rate", c.fim.spm_rate}, {"prefetch", c.prefetch}, {"workers", c.workers}};
}

Json to_json(const LoaderState& s) {
  Json sources = Json::array();
  for (const auto& t : s.sources)
    sources.push_back({{"sequences", t.sequences}, {"clm", t.clm}, {"fim", t.fim}, {"ignored", t.ignored}});
  return {{"next_sequence", s.next_sequence},
          {"sources", sources},
          {"batches", s.batches},
          {"fim",
           {{"segments", s.fim.segments},
            {"psm", s.fim.psm},
            {"spm", s.fim.spm},
            {"unchanged_lossy", s.fim.unchanged_lossy},
            {"truncated", s.fim.truncated},
            {"padded", s.fim.padded}}}};
}

LoaderState loader_state_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  LoaderState s;
  s.next_sequence = r.required<int64_t>("next_sequence");
  s.batches = r.required<int64_t>("batches");
  const Json* sources = r.raw("sources");
  GRANITE_CHECK(sources && sources->is_array(), where, ": 'sources' must be a list");
  for (size_t i = 0; i < sources->size(); ++i) {
    JsonReader t((*sources)[i], where + ": sources[" + std::to_string(i) + "]");
    SourceTokens tokens;
    tokens.sequences = t.required<int64_t>("sequences");
    tokens.clm = t.required<int64_t>("clm");
    tokens.fim = t.required<int64_t>("fim");
    tokens.ignored = t.required<int64_t>("ignored");
    t.finish();
    s.sources.push_back(tokens);
  }
  const Json* fim = r.raw("fim");
  GRANITE_CHECK(fim && fim->is_object(), where, ": 'fim' must be an object");
  JsonReader f(*fim, where + ": fim");
  s.fim.segments = f.required<int64_t>("segments");
  s.fim.psm = f.required<int64_t>("psm");
  s.fim.spm = f.required<int64_t>("spm");
  s.fim.unchanged_lossy = f.required<int64_t>("unchanged_lossy");
  s.fim.truncated = f.required<int64_t>("truncated");
  s.fim.padded = f.required<int64_t>("padded");
  f.finish();
  r.finish();
  GRANITE_CHECK(s.next_sequence >= 0, where, ": next_sequence must be >= 0, got ", s.next_sequence);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// The loader

struct PackedLoader::Impl {
  const LoaderConfig& config;
  const Tokenizer& tokenizer;
  const int rank, world;
  std::vector<std::unique_ptr<TokenStream>> streams;
  std::vector<double> weights;  // normalised
  FimTokens fim_tokens;
  TokenId eos = -1;

  // Producer side (the pipeline's producer thread only): the mixture walked in global order.
  int64_t next_sequence = 0;
  std::vector<int64_t> counts;
  // Committer side: running accounting.
  LoaderState running;

  // Hand-over to next(): made batches in order, at most config.prefetch of them.
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<PackedBatch> ready;
  bool stopping = false, finished = false;
  std::exception_ptr error;
  std::thread runner;

  Impl(const LoaderConfig& c, const Tokenizer& t, int r, int w) : config(c), tokenizer(t), rank(r), world(w) {}

  void plan(Plan& p) {
    p.rows.clear();
    while (int64_t(p.rows.size()) < config.micro_batch) {
      const int64_t g = next_sequence++;
      const size_t s = next_source(weights, counts, g);
      const int64_t ordinal = counts[s]++;
      if (g % world == rank) p.rows.push_back({g, s, ordinal});
    }
    // Finish the round so that next_sequence is a multiple-of-world boundary: the state every rank shares.
    while (next_sequence % world != 0) {
      const int64_t g = next_sequence++;
      counts[next_source(weights, counts, g)]++;
    }
    p.next_sequence = next_sequence;
    p.counts = counts;
  }

  void make(Plan& p) const {
    const int64_t L = config.seq_len;
    PackedBatch& b = p.batch;
    b.rows = int64_t(p.rows.size());
    b.seq_len = L;
    const size_t n = size_t(b.rows * L);
    b.input_ids.resize(n);
    b.labels.resize(n);
    b.objectives.resize(n);
    b.position_ids.resize(n);
    b.segment_ids.resize(n);
    b.sequences.clear();
    b.row_source.clear();
    std::vector<TokenId> tokens;
    std::vector<Objective> objectives;
    for (size_t row = 0; row < p.rows.size(); ++row) {
      const Row& r = p.rows[row];
      b.sequences.push_back(r.sequence);
      b.row_source.push_back(int32_t(r.source));
      tokens.clear();
      streams[r.source]->read(r.ordinal * L, L + 1, tokens);
      if (config.fim.rate > 0) {
        Rng rng = Rng::derive(config.seed, kFimStream, uint64_t(r.sequence));
        apply_fim(tokens, objectives, config.fim, fim_tokens, tokenizer, rng, &p.fim);
      } else {
        objectives.assign(tokens.size(), Objective::kClm);
      }
      const size_t base = row * size_t(L);
      int32_t position = 0, segment = 0;
      for (int64_t t = 0; t < L; ++t) {
        const size_t i = base + size_t(t);
        b.input_ids[i] = tokens[size_t(t)];
        const Objective objective = objectives[size_t(t) + 1];
        b.objectives[i] = objective;
        b.labels[i] = objective == Objective::kIgnore ? kIgnoreLabel : tokens[size_t(t) + 1];
        b.position_ids[i] = position++;
        b.segment_ids[i] = segment;
        if (tokens[size_t(t)] == eos) {  // the next token starts a new document
          position = 0;
          ++segment;
        }
      }
    }
  }

  // In batch order: the accounting, then the hand-over (waits while `prefetch` batches are waiting).
  void commit(Plan& p) {
    PackedBatch& b = p.batch;
    for (size_t s = 0; s < p.counts.size(); ++s) running.sources[s].sequences = p.counts[s];
    for (size_t i = 0; i < b.objectives.size(); ++i) {
      SourceTokens& t = running.sources[size_t(b.row_source[i / size_t(b.seq_len)])];
      switch (b.objectives[i]) {
        case Objective::kClm: ++t.clm; break;
        case Objective::kFim: ++t.fim; break;
        case Objective::kIgnore: ++t.ignored; break;
      }
    }
    running.fim += p.fim;
    running.next_sequence = p.next_sequence;
    ++running.batches;
    b.state_after = running;
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return stopping || int(ready.size()) < config.prefetch; });
    if (stopping) return;
    ready.push_back(std::move(b));
    changed.notify_all();
  }

  void run() {
    try {
      OrderedPipeline<Plan> pipeline(size_t(config.prefetch) + size_t(config.workers));
      pipeline.run(
          config.workers,
          [&](Plan& p) {
            {
              std::lock_guard<std::mutex> lock(mutex);
              if (stopping) return false;
            }
            plan(p);
            return true;
          },
          [&](Plan& p) { make(p); }, [&](Plan& p) { commit(p); });
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    changed.notify_all();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      changed.notify_all();
    }
    if (runner.joinable()) runner.join();
  }
};

PackedLoader::PackedLoader(LoaderConfig config, const Tokenizer& tokenizer, int rank, int world, LoaderState state)
    : config_(std::move(config)), state_(std::move(state)) {
  GRANITE_CHECK(world >= 1 && rank >= 0 && rank < world, "data loader rank ", rank, " of world size ", world);
  GRANITE_CHECK(!config_.sources.empty(), "the data loader needs at least one source");
  GRANITE_CHECK(config_.seq_len >= 1 && config_.micro_batch >= 1 && config_.prefetch >= 1 && config_.workers >= 1,
                "data loader: seq_len, micro_batch, prefetch and workers must be >= 1");
  impl_ = std::make_unique<Impl>(config_, tokenizer, rank, world);
  Impl& m = *impl_;
  double total = 0;
  for (const auto& s : config_.sources) {
    GRANITE_CHECK(s.weight > 0, "data source ", s.name, ": weight must be > 0, got ", s.weight);
    total += s.weight;
  }
  for (size_t i = 0; i < config_.sources.size(); ++i) {
    const auto& s = config_.sources[i];
    m.weights.push_back(s.weight / total);
    // Each source shuffles with a seed of its own, so adding a source does not reorder the others.
    uint64_t sm = config_.seed ^ (0x9E3779B97F4A7C15ull * (i + 1));
    m.streams.push_back(std::make_unique<TokenStream>(s.paths, splitmix64(sm), config_.shuffle));
  }
  const auto eos = tokenizer.special_tokens().eos;
  GRANITE_CHECK(eos.has_value(), "the data loader needs the tokenizer's EOS token (documents end with it)");
  m.eos = *eos;
  if (config_.fim.rate > 0) m.fim_tokens = FimTokens::from(tokenizer);
  // Where to continue.
  if (state_.sources.empty()) state_.sources.resize(config_.sources.size());
  GRANITE_CHECK(state_.sources.size() == config_.sources.size(), "data loader state has ", state_.sources.size(),
                " sources, the config ", config_.sources.size(), "; resume with the sources the run started with");
  GRANITE_CHECK(state_.next_sequence % world == 0 || world == 1, "data loader state: next_sequence ",
                state_.next_sequence, " is not a multiple of the world size ", world);
  m.next_sequence = state_.next_sequence;
  int64_t counted = 0;
  for (const auto& t : state_.sources) {
    m.counts.push_back(t.sequences);
    counted += t.sequences;
  }
  GRANITE_CHECK(counted == state_.next_sequence, "data loader state: the sources' sequences add up to ", counted,
                ", not next_sequence ", state_.next_sequence);
  m.running = state_;
  m.runner = std::thread([&m] { m.run(); });
}

PackedLoader::~PackedLoader() {
  if (impl_) impl_->stop();
}

PackedBatch PackedLoader::next() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mutex);
  m.changed.wait(lock, [&] { return !m.ready.empty() || m.finished; });
  if (m.ready.empty()) {
    if (m.error) std::rethrow_exception(m.error);
    GRANITE_FAIL("the data loader stopped");
  }
  PackedBatch batch = std::move(m.ready.front());
  m.ready.pop_front();
  m.changed.notify_all();
  state_ = batch.state_after;
  return batch;
}

int64_t PackedLoader::source_tokens_per_epoch(size_t source) const {
  GRANITE_CHECK(source < impl_->streams.size(), "no data source ", source);
  return impl_->streams[source]->tokens_per_epoch();
}

}  // namespace granite
