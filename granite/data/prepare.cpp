#include "granite/data/prepare.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/format.h"
#include "granite/core/list_directory.h"
#include "granite/core/mapped_file.h"
#include "granite/core/ordered_pipeline.h"
#include "granite/core/progress.h"
#include "granite/core/remove_tree.h"
#include "granite/core/thread_pool.h"
#include "granite/data/content_hash.h"
#include "granite/data/doc_store.h"
#include "granite/data/document_source.h"
#include "granite/data/filters.h"
#include "granite/data/indexed_dataset.h"
#include "granite/data/language_table.h"
#include "granite/data/minhash.h"
#include "granite/data/near_dedup.h"
#include "granite/data/pii.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/tokenizer/unicode.h"

namespace granite {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string absolute_path(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf)) return buf;
  return path;
}

// One JSON line. File names need not be UTF-8 (a Latin-1 name in an old repository): their invalid bytes become
// U+FFFD here rather than failing the run.
std::string jsonl_line(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; }

// Per-step CPU time summed over threads, for the report and the benchmark ("is tokenization the bottleneck?").
struct StepTimes {
  std::atomic<int64_t> read{0}, filter{0}, sha256{0}, minhash{0}, pii{0}, tokenize{0}, write{0};
  Json to_json() const {
    auto s = [](const std::atomic<int64_t>& ns) { return double(ns.load()) * 1e-9; };
    return Json{{"read", s(read)},     {"filter", s(filter)}, {"sha256", s(sha256)}, {"minhash", s(minhash)},
                {"pii", s(pii)},       {"tokenize", s(tokenize)}, {"write", s(write)}};
  }
};

// {"seconds", "producer", "workers", "committer"}: the fraction of the wall time each role was busy; the one near 1
// bounds the stage (the workers near 1 is the healthy case: the parallel part is the limit).
Json pipeline_json(const PipelineStats& p) {
  auto fraction = [](double busy, double total) { return total > 0 ? std::min(1.0, busy / total) : 0.0; };
  return {{"seconds", p.seconds},
          {"producer", fraction(p.produce_busy, p.seconds)},
          {"workers", fraction(p.process_busy, p.worker_seconds)},
          {"committer", fraction(p.commit_busy, p.seconds)}};
}

class StepTimer {
 public:
  explicit StepTimer(std::atomic<int64_t>& total) : total_(total), start_(Clock::now()) {}
  ~StepTimer() {
    total_ += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  }

 private:
  std::atomic<int64_t>& total_;
  Clock::time_point start_;
};

// ---------------------------------------------------------------------------------------------------------------
// The run's directory layout and completion markers.
struct Layout {
  std::string output, work;
  explicit Layout(const std::string& out) : output(out), work(out + "/.work") {}
  std::string report() const { return output + "/report.json"; }
  std::string dropped() const { return output + "/dropped.jsonl"; }
  std::string settings() const { return work + "/settings.json"; }
  std::string staged() const { return work + "/documents"; }
  std::string bands() const { return work + "/bands.bin"; }
  std::string scan_done() const { return work + "/scan.json"; }
  std::string scan_dropped() const { return work + "/dropped_scan.jsonl"; }
  std::string near_list() const { return work + "/near.bin"; }
  std::string near_done() const { return work + "/near.json"; }
  std::string shard(int64_t i) const {
    char name[32];
    std::snprintf(name, sizeof name, "/shard-%05lld", static_cast<long long>(i));
    return output + name;
  }
};

// Refuses an output directory that holds something other than a granite-data run.
void claim_output_directory(const Layout& layout, const Json& settings) {
  make_directories(layout.output);
  if (path_exists(layout.settings())) {
    Json previous = read_json_file(layout.settings());
    GRANITE_CHECK(previous == settings, layout.output,
                  " holds an unfinished granite-data run with different settings (inputs, tokenizer or config; see ",
                  layout.settings(), "). Use a new --output directory, or delete this one to start over.");
    // Temporary files of writes the interrupted run never committed (AtomicFile's "<name>.tmp.<pid>").
    for (const std::string& name : list_directory(layout.output))
      if (name.find(".tmp.") != std::string::npos && (name.rfind("shard-", 0) == 0 || name.rfind("report.json", 0) == 0 ||
                                                      name.rfind("dropped.jsonl", 0) == 0))
        ::unlink((layout.output + "/" + name).c_str());
    return;
  }
  std::vector<std::string> names = list_directory(layout.output);
  for (const std::string& name : names)
    GRANITE_CHECK(name == ".work", "output directory ", layout.output, " is not empty (it has ", name,
                  ") and is not an unfinished granite-data run; refusing to write into it");
  make_directories(layout.work);
  write_file_atomic(layout.settings(), settings.dump(2) + "\n");
}

// ---------------------------------------------------------------------------------------------------------------
// Stage 1: scan.
struct ScanSummary {
  int64_t documents_in = 0, bytes_in = 0, bytes_scanned = 0, staged = 0, staged_bytes = 0, exact_duplicates = 0;
  std::map<std::string, int64_t> filtered;
  std::vector<std::string> languages;  // a staged document's language index points here
  double seconds = 0;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ScanSummary, documents_in, bytes_in, bytes_scanned, staged, staged_bytes,
                                   exact_duplicates, filtered, languages, seconds)

struct ScanResult {
  std::string reason;    // why it is dropped; empty to keep
  std::string language;
  DigestKey digest;
  std::vector<uint64_t> bands;
  bool has_shingles = false;
};

struct ScanItem {
  SourceDocument doc;
  ScanResult result;
};

// Documents between reading and committing: a wide window, so that 16+ workers stay busy while the document at the
// head of the line (a 1 MB file takes 30 ms to MinHash) is still being processed, bounded by the bytes of text in
// flight to bound memory.
constexpr size_t kPipelineWindow = 8192;
constexpr size_t kPipelineBytes = size_t(256) << 20;

class Scanner {
 public:
  Scanner(const PrepareOptions& options, const Layout& layout, const LanguageTable& languages,
          const MinHasher& hasher, ThreadPool& pool, StepTimes& times)
      : options_(options), config_(options.config), layout_(layout), table_(languages), pool_(pool), times_(times),
        hasher_(hasher) {}

  ScanSummary run() {
    const auto start = Clock::now();
    DocStoreWriter store(layout_.staged());
    std::ofstream bands(layout_.bands(), std::ios::binary | std::ios::trunc);
    GRANITE_CHECK(bands.good(), "cannot create ", layout_.bands(), ": ", std::strerror(errno));
    AtomicFile dropped(layout_.scan_dropped());
    std::string dropped_lines;

    SourceOptions source_options;
    source_options.max_bytes = config_.filters.max_bytes;
    source_options.defer_reads = true;  // workers read the files: the walking thread only lists them
    DocumentSource source(options_.inputs, source_options);
    std::atomic<int64_t> bytes_read{0};
    ProgressLine progress(stderr, 10, options_.progress);
    // Read in order on one thread, process on all, commit (counts, exact dedup, staging) in input order.
    OrderedPipeline<ScanItem> pipeline(kPipelineWindow, kPipelineBytes, [](const ScanItem& item) {
      return item.doc.too_large ? size_t(0) : size_t(std::max<int64_t>(item.doc.size, 0));
    });
    pipeline.run(
        pool_.threads(),
        [&](ScanItem& item) {
          StepTimer t(times_.read);
          const bool more = source.next(item.doc);
          bytes_read = source.bytes_read();
          return more;
        },
        [&](ScanItem& item) { process(item.doc, item.result); },
        [&](ScanItem& item) {
          StepTimer t(times_.write);
          commit(item.doc, item.result, store, bands, dropped_lines);
          if (dropped_lines.size() > (1 << 20)) {
            dropped.write(dropped_lines.data(), dropped_lines.size());
            dropped_lines.clear();
          }
          if (progress.due()) progress.update(status_line(start, bytes_read.load()));
        });
    GRANITE_CHECK(summary_.documents_in > 0, "no documents found in the inputs (", list_string(options_.inputs),
                  "): directories were empty or held only skipped entries (symbolic links, .git, special files)");
    dropped.write(dropped_lines.data(), dropped_lines.size());
    dropped.commit();
    store.finish();
    bands.flush();
    GRANITE_CHECK(bands.good(), "cannot write ", layout_.bands(), ": ", std::strerror(errno));
    bands.close();
    summary_.seconds = seconds_since(start);
    pipeline_ = pipeline.stats();
    progress.finish(status_line(start, bytes_read.load()) + " done");
    return summary_;
  }

  const PipelineStats& pipeline_stats() const { return pipeline_; }

 private:
  // Pure per-document work (any thread): reading, language, filters, hashes.
  void process(SourceDocument& doc, ScanResult& r) const {
    // The language first: a file no language claims is counted without being read.
    if (!doc.language.empty()) {
      r.language = doc.language;
    } else if (const Language* language = table_.identify(doc.path)) {
      r.language = language->name;
    } else if (doc.error.empty() && !doc.too_large) {
      r.reason = "unknown_language";
      doc.deferred = false;
      return;
    }
    if (doc.deferred) {
      StepTimer t(times_.read);
      read_deferred(doc, config_.filters.max_bytes);
    }
    if (!doc.error.empty()) {
      r.reason = "unreadable";
      return;
    }
    if (doc.too_large) {
      r.reason = "too_large";
      return;
    }
    if (r.language.empty()) {
      r.reason = "unknown_language";
      return;
    }
    if (doc.text.empty()) {
      r.reason = "empty";
      return;
    }
    {
      StepTimer t(times_.filter);
      if (config_.filters_enabled) {
        if (auto reason = filter_reason(doc.text, r.language, config_.filters)) {
          r.reason = *reason;
          return;
        }
      } else if (first_invalid_utf8(doc.text) != std::string::npos || doc.text.find('\0') != std::string::npos) {
        r.reason = "binary";  // tokenization needs valid UTF-8 whatever the filters say
        return;
      }
    }
    if (config_.exact_dedup) {
      StepTimer t(times_.sha256);
      r.digest = digest_key(sha256(doc.text));
    }
    if (config_.near_dedup) {
      StepTimer t(times_.minhash);
      std::vector<uint64_t> shingles = shingle_hashes(doc.text, config_.minhash.shingle_size);
      r.has_shingles = !shingles.empty();
      if (r.has_shingles) r.bands = hasher_.band_keys(hasher_.signature(shingles));
    }
  }

  // In input order (one thread): counts, exact dedup, staging.
  void commit(const SourceDocument& doc, const ScanResult& r, DocStoreWriter& store, std::ofstream& bands,
              std::string& dropped_lines) {
    ++summary_.documents_in;
    summary_.bytes_in += doc.size;
    summary_.bytes_scanned += int64_t(doc.text.size());
    if (!r.reason.empty()) {
      ++summary_.filtered[r.reason];
      Json line{{"path", doc.path}, {"reason", r.reason}};
      if (!doc.error.empty()) line["error"] = doc.error;
      dropped_lines += jsonl_line(line);
      return;
    }
    if (config_.exact_dedup) {
      auto [it, inserted] = first_copy_.emplace(r.digest, summary_.staged);
      if (!inserted) {
        ++summary_.exact_duplicates;
        dropped_lines += jsonl_line({{"path", doc.path}, {"reason", "exact_duplicate"}, {"duplicate_of", it->second}});
        return;
      }
    }
    const uint16_t language = language_index(r.language);
    store.add(doc.path, doc.text, language, r.has_shingles ? kStagedHasShingles : 0);
    if (config_.near_dedup) {
      std::vector<uint64_t> keys = r.bands;
      keys.resize(size_t(hasher_.bands()), 0);  // documents without shingles: placeholder keys, never compared
      bands.write(reinterpret_cast<const char*>(keys.data()), std::streamsize(keys.size() * sizeof(uint64_t)));
    }
    ++summary_.staged;
    summary_.staged_bytes += int64_t(doc.text.size());
  }

  uint16_t language_index(const std::string& name) {
    auto it = language_ids_.find(name);
    if (it != language_ids_.end()) return it->second;
    GRANITE_CHECK(summary_.languages.size() < 65535, "more than 65535 distinct languages in the inputs");
    summary_.languages.push_back(name);
    return language_ids_[name] = uint16_t(summary_.languages.size() - 1);
  }

  std::string status_line(Clock::time_point start, int64_t bytes_read) const {
    const double s = std::max(seconds_since(start), 1e-9);
    return "scan: " + format_si(double(summary_.documents_in)) + " docs (" +
           format_si(double(summary_.documents_in) / s) + "/s), " + format_bytes(double(bytes_read)) + " (" +
           format_bytes(double(bytes_read) / s) + "/s), kept " + format_si(double(summary_.staged)) + ", " +
           format_duration(s);
  }

  const PrepareOptions& options_;
  const PrepareConfig& config_;
  const Layout& layout_;
  const LanguageTable& table_;
  ThreadPool& pool_;
  StepTimes& times_;
  const MinHasher& hasher_;
  ScanSummary summary_;
  PipelineStats pipeline_;
  std::unordered_map<DigestKey, int64_t, DigestKeyHash> first_copy_;  // digest -> staged index of the first copy
  std::unordered_map<std::string, uint16_t> language_ids_;
};

// ---------------------------------------------------------------------------------------------------------------
// Stage 2: near deduplication over the staged documents.
struct NearSummary {
  int64_t near_duplicates = 0, buckets = 0, comparisons = 0, edges = 0, bands = 0, rows = 0;
  double seconds = 0;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NearSummary, near_duplicates, buckets, comparisons, edges, bands, rows, seconds)

NearSummary run_near_dedup(const PrepareConfig& config, const MinHasher& hasher, const Layout& layout,
                           const DocStore& store, ThreadPool& pool, std::vector<NearDuplicate>& duplicates,
                           bool show_progress) {
  const auto start = Clock::now();
  NearSummary summary;
  summary.bands = hasher.bands();
  summary.rows = hasher.rows();
  duplicates.clear();
  if (config.near_dedup && store.size() > 0) {
    MappedFile keys(layout.bands());
    GRANITE_CHECK(keys.size() == size_t(store.size()) * size_t(hasher.bands()) * sizeof(uint64_t), layout.bands(),
                  ": ", keys.size(), " bytes, expected ", store.size(), " documents x ", hasher.bands(), " bands");
    std::vector<bool> eligible(size_t(store.size()));
    for (int64_t d = 0; d < store.size(); ++d) eligible[size_t(d)] = store.record(d).flags & kStagedHasShingles;
    NearDedupInput input;
    input.documents = store.size();
    input.bands = hasher.bands();
    input.band_keys = static_cast<const uint64_t*>(keys.data());
    input.eligible = &eligible;
    input.threshold = config.minhash.threshold;
    const int shingle_size = config.minhash.shingle_size;
    input.shingles = [&store, shingle_size](int64_t d) { return shingle_hashes(store.text(d), shingle_size); };
    NearDedupStats stats;
    duplicates = find_near_duplicates(input, pool, &stats);
    summary.buckets = stats.buckets;
    summary.comparisons = stats.comparisons;
    summary.edges = stats.edges;
  }
  summary.near_duplicates = int64_t(duplicates.size());
  summary.seconds = seconds_since(start);
  AtomicFile list(layout.near_list());
  list.write(duplicates.data(), duplicates.size() * sizeof(NearDuplicate));
  list.commit();
  write_file_atomic(layout.near_done(), Json(summary).dump(2) + "\n");
  if (show_progress)
    std::fprintf(stderr, "near-dedup: %lld near duplicates among %lld documents (%lld comparisons), %s\n",
                 static_cast<long long>(summary.near_duplicates), static_cast<long long>(store.size()),
                 static_cast<long long>(summary.comparisons), format_duration(summary.seconds).c_str());
  return summary;
}

std::vector<NearDuplicate> load_near_duplicates(const Layout& layout) {
  MappedFile list(layout.near_list());
  GRANITE_CHECK(list.size() % sizeof(NearDuplicate) == 0, layout.near_list(), ": truncated");
  std::vector<NearDuplicate> out(list.size() / sizeof(NearDuplicate));
  if (!out.empty()) std::memcpy(out.data(), list.data(), list.size());
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Stage 3: redact + tokenize into shards.
struct ShardPlan {
  int64_t begin = 0, end = 0;  // into the kept-document list
};

std::vector<ShardPlan> plan_shards(const std::vector<int64_t>& kept, const DocStore& store, int64_t shard_bytes) {
  std::vector<ShardPlan> shards;
  int64_t bytes = 0;
  for (int64_t k = 0; k < int64_t(kept.size()); ++k) {
    if (shards.empty() || bytes >= shard_bytes) {
      shards.push_back({k, k});
      bytes = 0;
    }
    bytes += int64_t(store.record(kept[size_t(k)]).text_length);
    shards.back().end = k + 1;
  }
  return shards;
}

Json tokenize_shard(const ShardPlan& plan, const std::string& prefix, const std::vector<int64_t>& kept,
                    const DocStore& store, const ScanSummary& scan, const Tokenizer& tokenizer,
                    const PiiRedactor* redactor, const PrepareConfig& config, TokenDtype dtype, ThreadPool& pool,
                    StepTimes& times, PipelineStats& pipeline_stats) {
  IndexedDatasetWriter writer(prefix, dtype);
  std::map<std::string, int64_t> tokens_by_language, documents_by_language;
  PiiCounts pii;
  int64_t bytes = 0;
  EncodeOptions plain;
  plain.parse_added_tokens = false;  // code that mentions "<fim_prefix>" is text, not a FIM marker
  const TokenId eos = *tokenizer.special_tokens().eos;
  // Documents in order on one thread, redaction + tokenization on all, appended to the shard in order.
  struct TokenItem {
    int64_t k = 0;  // into kept
    std::string packed;  // the document's tokens as the shard stores them
    int64_t tokens = 0;
    PiiCounts counts;
  };
  int64_t next = plan.begin;
  OrderedPipeline<TokenItem> pipeline(kPipelineWindow, kPipelineBytes, [&](const TokenItem& item) {
    return size_t(store.record(kept[size_t(item.k)]).text_length);
  });
  pipeline.run(
      pool.threads(),
      [&](TokenItem& item) {
        if (next >= plan.end) return false;
        item.k = next++;
        return true;
      },
      [&](TokenItem& item) {
        std::string_view text = store.text(kept[size_t(item.k)]);
        std::string redacted;
        if (redactor) {
          StepTimer t(times.pii);
          redacted = redactor->redact(text, item.counts);
          text = redacted;
        }
        StepTimer t(times.tokenize);
        std::vector<TokenId> ids = tokenizer.encode(text, plain);
        if (config.append_eos) ids.push_back(eos);
        size_t bad = 0;
        GRANITE_CHECK(pack_tokens(ids, dtype, item.packed, &bad), "token id ", ids[bad], " of ",
                      store.path(kept[size_t(item.k)]), " does not fit the shards' dtype (vocabulary size ",
                      tokenizer.vocab_size(), ")");
        item.tokens = int64_t(ids.size());
      },
      [&](TokenItem& item) {
        StepTimer t(times.write);
        const StagedRecord& r = store.record(kept[size_t(item.k)]);
        const std::string& language = scan.languages.at(r.language);
        writer.add_packed(item.packed);
        tokens_by_language[language] += item.tokens;
        ++documents_by_language[language];
        bytes += int64_t(r.text_length);
        pii += item.counts;
      });
  pipeline_stats += pipeline.stats();
  Json stats{{"documents", writer.documents()},
             {"tokens", writer.tokens()},
             {"bytes", bytes},
             {"tokens_by_language", tokens_by_language},
             {"documents_by_language", documents_by_language},
             {"pii_redactions", {{"email", pii.emails}, {"ip_address", pii.ip_addresses}, {"key", pii.keys}}}};
  // The stats first, the shard's .idx last: an .idx means both the shard and its stats are complete.
  write_file_atomic(prefix + ".json", stats.dump(2) + "\n");
  writer.finish();
  return stats;
}

// dropped.jsonl: the scan's drops with duplicate_of resolved to a path, then the near duplicates.
void write_dropped(const Layout& layout, const DocStore& store, const std::vector<NearDuplicate>& near) {
  AtomicFile out(layout.dropped());
  std::ifstream scan(layout.scan_dropped());
  GRANITE_CHECK(scan.good(), "cannot read ", layout.scan_dropped());
  std::string line, buffer;
  while (std::getline(scan, line)) {
    Json j = Json::parse(line);
    if (j.contains("duplicate_of")) j["duplicate_of"] = std::string(store.path(j["duplicate_of"].get<int64_t>()));
    buffer += jsonl_line(j);
    if (buffer.size() > (1 << 20)) {
      out.write(buffer.data(), buffer.size());
      buffer.clear();
    }
  }
  for (const NearDuplicate& d : near) {
    buffer += jsonl_line({{"path", std::string(store.path(d.document))},
                          {"reason", "near_duplicate"},
                          {"duplicate_of", std::string(store.path(d.matched))},
                          {"similarity", d.similarity},
                          {"kept", std::string(store.path(d.kept))}});
    if (buffer.size() > (1 << 20)) {
      out.write(buffer.data(), buffer.size());
      buffer.clear();
    }
  }
  out.write(buffer.data(), buffer.size());
  out.commit();
}

void add_into(Json& total, const Json& part) {
  for (auto it = part.begin(); it != part.end(); ++it)
    total[it.key()] = total.value(it.key(), int64_t(0)) + it.value().get<int64_t>();
}

}  // namespace

Json prepare_dataset(const PrepareOptions& options) {
  const auto start = Clock::now();
  GRANITE_CHECK(!options.inputs.empty(), "granite-data prepare: no --input given");
  GRANITE_CHECK(!options.output.empty(), "granite-data prepare: no --output given");
  const Layout layout(options.output);
  const PrepareConfig& config = options.config;

  // Fail on bad inputs before touching the output directory.
  for (const std::string& input : options.inputs) GRANITE_CHECK(path_exists(input), "input does not exist: ", input);
  // The tokenizer loads on its own thread while the language table and the MinHash parameters are prepared; its
  // errors still come before anything is written.
  std::future<std::unique_ptr<Tokenizer>> loading =
      std::async(std::launch::async, [&options] { return load_tokenizer(options.tokenizer); });
  std::optional<LanguageTable> custom_table;
  if (!config.languages.empty()) custom_table = LanguageTable::load(config.languages);
  const LanguageTable& languages = custom_table ? *custom_table : LanguageTable::builtin();
  const MinHasher hasher(config.minhash);  // validates the MinHash settings up front; one for the whole run
  std::unique_ptr<Tokenizer> tokenizer = loading.get();
  GRANITE_CHECK(!config.append_eos || tokenizer->special_tokens().eos, "tokenizer ", options.tokenizer,
                " has no EOS token, which is appended after every document (set \"append_eos\": false to go without)");

  std::vector<std::string> inputs;
  for (const std::string& input : options.inputs) inputs.push_back(absolute_path(input));
  Json settings{{"inputs", inputs},
                {"tokenizer", absolute_path(options.tokenizer)},
                {"vocab_size", tokenizer->vocab_size()},
                {"config", to_json(config)}};
  if (path_exists(layout.report())) {
    Json report = read_json_file(layout.report());
    GRANITE_CHECK(report.value("settings", Json()) == settings, layout.output,
                  " holds a finished granite-data run with different settings; use a new --output directory");
    if (options.progress) std::fprintf(stderr, "%s is complete (report.json); nothing to do\n", layout.output.c_str());
    return report;
  }
  claim_output_directory(layout, settings);

  ThreadPool pool(options.threads);
  const double setup_seconds = seconds_since(start);  // tokenizer, language table, MinHash parameters, claiming
  StepTimes times;
  Json pipelines = Json::object();  // how busy each pipeline's producer, workers and committer were (this run only)
  // Stage 1: scan (or its result from an earlier run).
  ScanSummary scan;
  bool resumed = false;  // some stage's result comes from an earlier, interrupted run
  if (path_exists(layout.scan_done())) {
    scan = read_json_file(layout.scan_done()).get<ScanSummary>();
    resumed = true;
  } else {
    Scanner scanner(options, layout, languages, hasher, pool, times);
    scan = scanner.run();
    pipelines["scan"] = pipeline_json(scanner.pipeline_stats());
    write_file_atomic(layout.scan_done(), Json(scan).dump(2) + "\n");
  }
  DocStore store(layout.staged());
  GRANITE_CHECK(store.size() == scan.staged, layout.staged(), ": ", store.size(), " staged documents, scan.json says ",
                scan.staged);

  // Stage 2: near deduplication.
  std::vector<NearDuplicate> near;
  NearSummary near_summary;
  if (path_exists(layout.near_done())) {
    near_summary = read_json_file(layout.near_done()).get<NearSummary>();
    near = load_near_duplicates(layout);
    resumed = true;
  } else {
    near_summary = run_near_dedup(config, hasher, layout, store, pool, near, options.progress);
  }

  // Stage 3: tokenize the kept documents into shards.
  const auto tokenize_start = Clock::now();
  std::vector<bool> dropped(size_t(store.size()), false);
  for (const NearDuplicate& d : near) dropped[size_t(d.document)] = true;
  std::vector<int64_t> kept;
  for (int64_t d = 0; d < store.size(); ++d)
    if (!dropped[size_t(d)]) kept.push_back(d);
  std::unique_ptr<PiiRedactor> redactor;
  if (config.pii_enabled) redactor = std::make_unique<PiiRedactor>(config.pii);
  const TokenDtype dtype = token_dtype_for_vocab(tokenizer->vocab_size());
  const std::vector<ShardPlan> plans = plan_shards(kept, store, config.shard_bytes);
  Json shards = Json::array(), tokens_by_language = Json::object(), documents_by_language = Json::object(),
       pii = Json::object();
  int64_t tokens_out = 0, bytes_out = 0, resumed_shards = 0;
  PipelineStats tokenize_pipeline;
  ProgressLine progress(stderr, 10, options.progress);
  for (size_t s = 0; s < plans.size(); ++s) {
    const std::string prefix = layout.shard(int64_t(s));
    Json stats;
    if (path_exists(prefix + ".idx") && path_exists(prefix + ".json")) {
      stats = read_json_file(prefix + ".json");
      ++resumed_shards;
    } else {
      stats = tokenize_shard(plans[s], prefix, kept, store, scan, *tokenizer, redactor.get(), config, dtype, pool,
                             times, tokenize_pipeline);
    }
    tokens_out += stats.at("tokens").get<int64_t>();
    bytes_out += stats.at("bytes").get<int64_t>();
    add_into(tokens_by_language, stats.at("tokens_by_language"));
    add_into(documents_by_language, stats.at("documents_by_language"));
    add_into(pii, stats.at("pii_redactions"));
    const std::string name = prefix.substr(layout.output.size() + 1);
    shards.push_back({{"name", name}, {"documents", stats.at("documents")}, {"tokens", stats.at("tokens")}});
    const double elapsed = std::max(seconds_since(tokenize_start), 1e-9);
    const double eta = elapsed / double(s + 1) * double(plans.size() - s - 1);
    progress.update("tokenize: shard " + std::to_string(s + 1) + "/" + std::to_string(plans.size()) + ", " +
                    format_si(double(tokens_out)) + " tokens (" + format_si(double(tokens_out) / elapsed) +
                    "/s), " + format_bytes(double(bytes_out) / elapsed) + "/s, ETA " + format_duration(eta));
  }
  const double tokenize_seconds = seconds_since(tokenize_start);
  if (tokenize_pipeline.seconds > 0) pipelines["tokenize"] = pipeline_json(tokenize_pipeline);
  progress.finish("tokenize: " + std::to_string(plans.size()) + " shards, " + format_si(double(tokens_out)) +
                  " tokens" + (resumed_shards ? " (" + std::to_string(resumed_shards) + " shards from an earlier run)" : "") +
                  ", " + format_duration(tokenize_seconds));

  const auto finish_start = Clock::now();
  write_dropped(layout, store, near);
  int64_t pii_total = 0;
  for (auto it = pii.begin(); it != pii.end(); ++it) pii_total += it.value().get<int64_t>();
  Json report{
      {"documents_in", scan.documents_in},
      {"documents_out", int64_t(kept.size())},
      {"bytes_in", scan.bytes_in},            // every input file's size, including files too large to read
      {"bytes_scanned", scan.bytes_scanned},  // bytes actually read and processed
      {"bytes_out", bytes_out},
      {"exact_duplicates", scan.exact_duplicates},
      {"near_duplicates", near_summary.near_duplicates},
      {"filtered", scan.filtered},
      {"pii_redactions", pii_total},
      {"pii_redactions_by_kind", pii},
      {"tokens_out", tokens_out},
      {"tokens_by_language", tokens_by_language},
      {"documents_by_language", documents_by_language},
      {"shards", shards},
      {"token_dtype", dtype == TokenDtype::UInt16 ? "uint16" : "int32"},
      {"eos_id", config.append_eos ? Json(*tokenizer->special_tokens().eos) : Json(nullptr)},
      {"near_dedup", Json(near_summary)},
      {"threads", pool.threads()},
      {"seconds", seconds_since(start)},
      {"stage_seconds",
       {{"setup", setup_seconds},
        {"scan", scan.seconds},
        {"near_dedup", near_summary.seconds},
        {"tokenize", tokenize_seconds},
        {"finish", 0.0}}},  // set below, once the report is all that is left to write
      {"cpu_seconds_by_step", times.to_json()},
      {"pipeline_busy", pipelines},
      {"resumed", resumed || resumed_shards > 0},
      {"settings", settings}};
  report["stage_seconds"]["finish"] = seconds_since(finish_start);
  report["seconds"] = seconds_since(start);
  write_file_atomic(layout.report(), report.dump(2) + "\n");
  remove_tree(layout.work);
  if (kept.empty() && options.progress)
    std::fprintf(stderr, "warning: no document survived the filters and deduplication; see %s\n",
                 layout.dropped().c_str());
  return report;
}

}  // namespace granite
