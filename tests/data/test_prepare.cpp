// granite-data prepare end to end on real code: the CPython 3.11 standard library bundled in data/corpus, with
// injected exact and near duplicates, files for each filter, and PII; resumption after SIGKILL compared with an
// uninterrupted run; bad inputs.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "granite/core/check.h"
#include "granite/core/json.h"
#include "granite/data/document_source.h"
#include "granite/data/indexed_dataset.h"
#include "granite/data/pii.h"
#include "granite/data/prepare.h"
#include "granite/tokenizer/tokenizer.h"
#include "support/paths.h"
#include "support/shell.h"

using namespace granite;
using namespace granite::test;

namespace {

const std::string kArchive = "data/corpus/cpython-3.11-lib.tar.gz";
const std::string kTokenizer = "data/tokenizers/starcoder/tokenizer.json";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  for (const auto& line : read_lines(path)) out.push_back(Json::parse(line));
  return out;
}

// The test's own shingling (strings, not hashes): an independent check of the tool's Jaccard similarity.
std::set<std::string> reference_shingles(const std::string& text) {
  std::vector<std::string> words;
  std::string w;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      w += char(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(w);
  std::set<std::string> out;
  for (size_t i = 0; i + 5 <= words.size(); ++i)
    out.insert(words[i] + " " + words[i + 1] + " " + words[i + 2] + " " + words[i + 3] + " " + words[i + 4]);
  return out;
}

double reference_jaccard(const std::string& a, const std::string& b) {
  auto sa = reference_shingles(a), sb = reference_shingles(b);
  size_t common = 0;
  for (const auto& s : sa) common += sb.count(s);
  return double(common) / double(sa.size() + sb.size() - common);
}

// Every document of the inputs, by path (the library's own reader; tested in test_document_source.cpp).
std::map<std::string, std::string> read_all(const std::vector<std::string>& inputs) {
  std::map<std::string, std::string> docs;
  DocumentSource source(inputs);
  SourceDocument d;
  while (source.next(d)) docs[d.path] = d.text;
  return docs;
}

// Replaces line `n` (0-based) of `text` by `replacement`.
std::string replace_line(const std::string& text, int n, const std::string& replacement) {
  size_t begin = 0;
  for (int i = 0; i < n; ++i) begin = text.find('\n', begin) + 1;
  size_t end = text.find('\n', begin);
  return text.substr(0, begin) + replacement + text.substr(end);
}

struct Injected {
  std::string dir;
  std::map<std::string, std::string> exact;  // injected path -> the archive path it copies
  std::map<std::string, std::string> near;   // injected path -> the archive path it was edited from
};

// Real files with injected duplicates, plus one file for each filter and one with PII.
Injected make_injected(const std::string& root, const std::map<std::string, std::string>& corpus) {
  Injected inj;
  inj.dir = root + "/injected";
  REQUIRE(::mkdir(inj.dir.c_str(), 0755) == 0);
  const std::string prefix = source_path(kArchive) + "!cpython-3.11-lib/";
  int k = 0;
  for (const char* name : {"os.py", "json/decoder.py", "http/client.py", "email/utils.py", "textwrap.py"}) {
    const std::string path = inj.dir + "/copy_" + std::to_string(k++) + ".py";
    write_file(path, corpus.at(prefix + name));
    inj.exact[path] = prefix + name;
  }
  // Edited copies: a changed line, a deleted line, a new comment (Jaccard still well above 0.7).
  for (const char* name : {"argparse.py", "json/encoder.py", "urllib/parse.py", "email/message.py", "shutil.py"}) {
    std::string text = corpus.at(prefix + name);
    text = "# vendored copy of the module\n" + replace_line(text, 30, "# (line removed)");
    text = replace_line(text, 60, "x_renamed = compute_something_else(1, 2, 3)");
    const std::string path = inj.dir + "/edited_" + std::to_string(k++) + ".py";
    write_file(path, text);
    inj.near[path] = prefix + name;
  }
  write_file(inj.dir + "/notes.txt", "plain notes, no language of the 116\n");
  write_file(inj.dir + "/bad_utf8.py", "x = '\xff\xfe'\nprint(x)\n");
  write_file(inj.dir + "/empty.py", "");
  write_file(inj.dir + "/tiny.json", "{\"name\": \"granite\"}\n");
  write_file(inj.dir + "/layout.xml", "<?xml version=\"1.0\"?>\n<layout><item name=\"alpha beta gamma\"/></layout>\n");
  write_file(inj.dir + "/numbers.py", "x = [" + std::string(400, '1') + "]\n");
  write_file(inj.dir + "/settings.py",
             "ADMIN_EMAIL = 'jane.doe@corp-mail.io'\nSERVER = '93.184.216.34'\n"
             "AWS_KEY = 'AKIA2E0A8F3B244C9986'\nDEBUG = True  # contact ops@corp-mail.io\n");
  return inj;
}

Json report_without_timing(Json report) {
  for (const char* key : {"seconds", "stage_seconds", "cpu_seconds_by_step", "pipeline_busy", "resumed"})
    report.erase(key);
  report["near_dedup"].erase("seconds");
  return report;
}

std::string granite_data() { return std::string(GRANITE_BINARY_DIR) + "/apps/granite-data"; }

// Starts granite-data with `args`, output to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(fileno(stdout), 2);
    std::vector<char*> argv;
    std::string program = granite_data();
    argv.push_back(program.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until `ready()` or the process ends; SIGKILLs it if still running. True when it was killed mid-run.
bool kill_when(pid_t pid, const std::function<bool()>& ready) {
  for (int i = 0; i < 60000; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // finished on its own: too fast to interrupt
    if (ready()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return WIFSIGNALED(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  FAIL("granite-data neither finished nor reached the kill point in 60 s");
  return false;
}

}  // namespace

TEST_CASE("prepare on real code finds every injected duplicate, drops no distinct file, and shards decode back",
          "[data][prepare]") {
  const std::string root = scratch_dir("prepare_real");
  const auto corpus = read_all({source_path(kArchive)});
  REQUIRE(corpus.size() == 207);
  const Injected inj = make_injected(root, corpus);

  PrepareOptions options;
  options.inputs = {source_path(kArchive), inj.dir};
  options.output = root + "/out";
  options.tokenizer = source_path(kTokenizer);
  options.config.shard_bytes = 1 << 20;
  options.threads = 2;
  options.progress = false;
  const Json report = prepare_dataset(options);

  // The report's accounting adds up.
  const int64_t documents_in = report.at("documents_in");
  CHECK(documents_in == int64_t(corpus.size()) + 17);
  int64_t filtered = 0;
  for (auto& [reason, n] : report.at("filtered").items()) filtered += n.get<int64_t>();
  CHECK(report.at("documents_out").get<int64_t>() + report.at("exact_duplicates").get<int64_t>() +
            report.at("near_duplicates").get<int64_t>() + filtered ==
        documents_in);
  CHECK(report.at("tokens_out").get<int64_t>() > 1000000);
  CHECK(report.at("tokens_by_language").at("Python") == report.at("tokens_out"));
  CHECK(report.at("token_dtype") == "uint16");
  CHECK(report.at("near_dedup").at("bands") == 25);
  CHECK(report.at("near_dedup").at("rows") == 10);
  // The PII file: two e-mail addresses, a public IP, an AWS key id (the stdlib's own may add more).
  CHECK(report.at("pii_redactions_by_kind").at("email").get<int64_t>() >= 2);
  CHECK(report.at("pii_redactions_by_kind").at("ip_address").get<int64_t>() >= 1);
  CHECK(report.at("pii_redactions_by_kind").at("key").get<int64_t>() >= 1);
  CHECK_FALSE(exists(options.output + "/.work"));

  // dropped.jsonl: every injected copy is found, with the right original; every filter file has its reason.
  std::map<std::string, Json> dropped;
  for (const Json& d : read_jsonl(options.output + "/dropped.jsonl")) dropped[d.at("path")] = d;
  for (const auto& [path, original] : inj.exact) {
    INFO(path);
    REQUIRE(dropped.count(path));
    CHECK(dropped[path].at("reason") == "exact_duplicate");
    CHECK(dropped[path].at("duplicate_of") == original);
  }
  for (const auto& [path, original] : inj.near) {
    INFO(path);
    REQUIRE(dropped.count(path));
    CHECK(dropped[path].at("reason") == "near_duplicate");
    CHECK(dropped[path].at("kept") == original);
  }
  const std::map<std::string, std::string> expected_reasons = {
      {"notes.txt", "unknown_language"}, {"bad_utf8.py", "binary"},       {"empty.py", "empty"},
      {"tiny.json", "json_yaml_size"},   {"layout.xml", "xml_header"},    {"numbers.py", "alpha_fraction"}};
  for (const auto& [name, reason] : expected_reasons) {
    INFO(name);
    REQUIRE(dropped.count(inj.dir + "/" + name));
    CHECK(dropped[inj.dir + "/" + name].at("reason") == reason);
  }

  // No distinct file is dropped: each near duplicate is verified here, with the test's own shingling, to be at
  // least 0.7 similar to the document it matched; each exact duplicate is byte-identical to its original.
  auto all = corpus;
  for (const auto& [path, text] : read_all({inj.dir})) all[path] = text;
  for (const auto& [path, d] : dropped) {
    INFO(path << " " << d.dump());
    if (d.at("reason") == "near_duplicate") {
      const double j = reference_jaccard(all.at(path), all.at(d.at("duplicate_of")));
      CHECK(j >= 0.7);
      CHECK(j == Approx(d.at("similarity").get<double>()).margin(1e-9));
    } else if (d.at("reason") == "exact_duplicate") {
      CHECK(all.at(path) == all.at(d.at("duplicate_of")));
    }
  }

  // The shards hold exactly the kept documents, in input order, PII-redacted, each followed by EOS.
  auto tokenizer = load_tokenizer(options.tokenizer);
  const TokenId eos = *tokenizer->special_tokens().eos;
  PiiRedactor redactor;
  std::vector<std::string> kept_in_order;
  for (const auto& input : options.inputs) {
    DocumentSource source({input});
    SourceDocument d;
    while (source.next(d))
      if (!dropped.count(d.path)) kept_in_order.push_back(d.path);
  }
  REQUIRE(int64_t(kept_in_order.size()) == report.at("documents_out").get<int64_t>());
  size_t next = 0;
  int64_t tokens = 0;
  for (const Json& shard : report.at("shards")) {
    auto dataset = IndexedDataset::open(options.output + "/" + shard.at("name").get<std::string>());
    CHECK(dataset->size() == shard.at("documents").get<int64_t>());
    for (int64_t i = 0; i < dataset->size(); ++i, ++next) {
      REQUIRE(next < kept_in_order.size());
      std::vector<TokenId> ids = dataset->get(i);
      tokens += int64_t(ids.size());
      REQUIRE(ids.back() == eos);
      ids.pop_back();
      PiiCounts counts;
      INFO(kept_in_order[next]);
      CHECK(tokenizer->decode(ids) == redactor.redact(all.at(kept_in_order[next]), counts));
    }
  }
  CHECK(next == kept_in_order.size());
  CHECK(tokens == report.at("tokens_out").get<int64_t>());
  const std::string settings = read_file(options.output + "/shard-00000.json");
  CHECK(settings.find("tokens_by_language") != std::string::npos);

  // Where the time went: each pipeline's roles as fractions of its wall time.
  for (const char* stage : {"scan", "tokenize"}) {
    const Json& busy = report.at("pipeline_busy").at(stage);
    for (const char* role : {"producer", "workers", "committer"}) {
      INFO(stage << " " << role);
      CHECK(busy.at(role).get<double>() >= 0.0);
      CHECK(busy.at(role).get<double>() <= 1.0);
    }
    CHECK(busy.at("seconds").get<double>() > 0.0);
  }

  // A rerun on the finished directory does nothing and returns the same report.
  CHECK(prepare_dataset(options) == report);
}

TEST_CASE("prepare killed with SIGKILL during the scan and during tokenization resumes to the uninterrupted result",
          "[data][prepare][resume]") {
  const std::string root = scratch_dir("prepare_resume");
  const std::string config = root + "/config.json";
  write_file(config, R"({"shard_bytes": 262144})");
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"prepare", "--input", source_path(kArchive), "--output", out, "--tokenizer",
                                    source_path(kTokenizer), "--config", config, "--threads", "1"};
  };
  auto run = [&](const std::string& out) {
    auto a = args(out);
    std::string command = quoted(granite_data());
    for (const auto& s : a) command += " " + quoted(s);
    return shell(command + " 2>&1");
  };
  const std::string a = root + "/uninterrupted", b = root + "/interrupted";
  const auto full = run(a);
  INFO(full.output);
  REQUIRE(full.status == 0);
  const Json reference = read_json_file(a + "/report.json");
  REQUIRE(reference.at("shards").size() >= 10);

  // Killed in the scan, once the staging holds some text.
  bool killed = kill_when(spawn(args(b), root + "/log1"), [&] { return file_size(b + "/.work/documents.txt") > 300000; });
  REQUIRE(killed);
  CHECK_FALSE(exists(b + "/report.json"));
  // Killed in tokenization, after some shards are complete.
  killed = kill_when(spawn(args(b), root + "/log2"), [&] { return exists(b + "/shard-00003.idx"); });
  REQUIRE(killed);
  CHECK_FALSE(exists(b + "/report.json"));
  // Whatever is on disk now is either a complete shard (its .idx opens and matches its .bin) or has no .idx.
  for (int s = 0; s < 100; ++s) {
    char name[32];
    std::snprintf(name, sizeof name, "/shard-%05d", s);
    if (exists(b + name + std::string(".idx"))) {
      CHECK(exists(b + name + std::string(".json")));
      CHECK_NOTHROW(IndexedDataset::open(b + name));
    }
  }
  const auto resumed = run(b);
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  const Json report = read_json_file(b + "/report.json");
  CHECK(report.at("resumed") == true);
  CHECK(report_without_timing(report) == report_without_timing(reference));
  for (const Json& shard : reference.at("shards")) {
    const std::string name = shard.at("name");
    for (const char* ext : {".bin", ".idx", ".json"}) {
      INFO(name << ext);
      CHECK(read_file(b + "/" + name + ext) == read_file(a + "/" + name + ext));
    }
  }
  CHECK(read_file(b + "/dropped.jsonl") == read_file(a + "/dropped.jsonl"));
  CHECK_FALSE(exists(b + "/.work"));
}

TEST_CASE("prepare: natural-language JSONL without deduplication keeps copies and counts tokens by language",
          "[data][prepare]") {
  const std::string root = scratch_dir("prepare_text");
  write_lines(root + "/web.jsonl",
              {R"({"text": "The quick brown fox jumps over the lazy dog near the river bank today."})",
               R"({"text": "The quick brown fox jumps over the lazy dog near the river bank today."})", "",
               R"({"text": "Une phrase en français, avec des accents é à ù.", "language": "french"})"});
  PrepareOptions options;
  options.inputs = {root + "/web.jsonl"};
  options.output = root + "/out";
  options.tokenizer = source_path(kTokenizer);
  options.config = load_prepare_config(source_path("configs/data/prepare-text.json"));
  options.progress = false;
  const Json report = prepare_dataset(options);
  CHECK(report.at("documents_in") == 3);
  CHECK(report.at("documents_out") == 3);
  CHECK(report.at("exact_duplicates") == 0);
  CHECK(report.at("documents_by_language").at("text") == 2);
  CHECK(report.at("documents_by_language").at("french") == 1);
  CHECK(report.at("tokens_by_language").at("text").get<int64_t>() +
            report.at("tokens_by_language").at("french").get<int64_t>() ==
        report.at("tokens_out").get<int64_t>());
}

TEST_CASE("prepare: file names that are not UTF-8 are reported with U+FFFD, not an error", "[data][prepare]") {
  const std::string root = scratch_dir("prepare_latin1");
  REQUIRE(::mkdir((root + "/src").c_str(), 0755) == 0);
  write_file(root + "/src/r\xe9sum\xe9.txt", "not code\n");              // Latin-1 "résumé.txt": dropped
  write_file(root + "/src/caf\xe9.py", "def brew(cup):\n    return cup\n");  // Latin-1 "café.py": kept
  PrepareOptions options;
  options.inputs = {root + "/src"};
  options.output = root + "/out";
  options.tokenizer = source_path(kTokenizer);
  options.progress = false;
  const Json report = prepare_dataset(options);
  CHECK(report.at("documents_out") == 1);
  const auto dropped = read_jsonl(options.output + "/dropped.jsonl");
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0].at("path") == root + "/src/r\xef\xbf\xbdsum\xef\xbf\xbd.txt");
  CHECK(dropped[0].at("reason") == "unknown_language");
}

TEST_CASE("prepare: bad inputs and unusable output directories give clear errors and touch nothing",
          "[data][prepare][errors]") {
  const std::string root = scratch_dir("prepare_errors");
  PrepareOptions options;
  options.tokenizer = source_path(kTokenizer);
  options.progress = false;

  // A missing input: nothing is created.
  options.inputs = {root + "/no_such_dir"};
  options.output = root + "/out_missing";
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("input does not exist: " + root + "/no_such_dir"));
  CHECK_FALSE(exists(options.output));

  // An empty input directory.
  REQUIRE(::mkdir((root + "/empty").c_str(), 0755) == 0);
  options.inputs = {root + "/empty"};
  options.output = root + "/out_empty";
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("no documents found"));

  // A malformed JSONL line names the file and line.
  write_lines(root + "/bad.jsonl", {R"({"text": "ok"})", R"({"text": "fine"})", R"({"text": oops})"});
  options.inputs = {root + "/bad.jsonl"};
  options.output = root + "/out_bad_jsonl";
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains(root + "/bad.jsonl:3"));

  // A directory with the user's files is refused and left as it was.
  REQUIRE(::mkdir((root + "/src").c_str(), 0755) == 0);
  write_file(root + "/src/a.py", "def f(x):\n    return x + 1\n");
  options.inputs = {root + "/src"};
  options.output = root + "/users_dir";
  REQUIRE(::mkdir(options.output.c_str(), 0755) == 0);
  write_file(options.output + "/thesis.tex", "my work");
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("is not empty (it has thesis.tex)"));
  CHECK(read_file(options.output + "/thesis.tex") == "my work");
  CHECK_FALSE(exists(options.output + "/.work"));

  // An unfinished run with other settings is not mixed with this one.
  options.output = root + "/other_run";
  REQUIRE(::mkdir(options.output.c_str(), 0755) == 0);
  REQUIRE(::mkdir((options.output + "/.work").c_str(), 0755) == 0);
  write_file(options.output + "/.work/settings.json", R"({"inputs": ["elsewhere"]})");
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("different settings"));

  // A finished run, then the same output with another config.
  options.output = root + "/finished";
  REQUIRE_NOTHROW(prepare_dataset(options));
  options.config.minhash.threshold = 0.8;
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("finished granite-data run with different settings"));

  // An output directory that cannot be created.
  options.output = "/proc/granite-test-output";
  REQUIRE_THROWS_WITH(prepare_dataset(options), Catch::Contains("cannot create directory /proc/granite-test-output"));
}

TEST_CASE("granite-data: a full disk is a clear error and leaves no shard that looks complete, config errors name "
          "the key",
          "[data][prepare][errors][apps]") {
  const std::string root = scratch_dir("prepare_cli_errors");
  const std::string out = root + "/out";
  // File-size limit of 256 KiB with SIGXFSZ ignored: writes past it fail with EFBIG, as on a full disk.
  const std::string command = "ulimit -f 512; trap '' XFSZ; exec " + quoted(granite_data()) + " prepare --input " +
                              quoted(source_path(kArchive)) + " --output " + quoted(out) + " --tokenizer " +
                              quoted(source_path(kTokenizer)) + " --quiet 2>&1";
  const auto r = shell("sh -c " + quoted(command));
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("granite-data: error: cannot write " + out + "/.work/documents.txt: File too large") !=
        std::string::npos);
  CHECK_FALSE(exists(out + "/report.json"));
  CHECK_FALSE(exists(out + "/shard-00000.idx"));

  write_file(root + "/config.json", R"({"dedup": {"thresold": 0.8}})");
  const auto c = shell(quoted(granite_data()) + " prepare --input " + quoted(source_path(kArchive)) + " --output " +
                       quoted(root + "/out2") + " --tokenizer " + quoted(source_path(kTokenizer)) + " --config " +
                       quoted(root + "/config.json") + " 2>&1");
  INFO(c.output);
  CHECK(c.status == 1);
  CHECK(c.output.find(root + "/config.json: dedup") != std::string::npos);
  CHECK(c.output.find("thresold") != std::string::npos);
  CHECK_FALSE(exists(root + "/out2"));
}

TEST_CASE("prepare config: defaults are the paper's, every key round-trips, mistakes name the key and value",
          "[data][prepare][config]") {
  const PrepareConfig defaults;
  CHECK(defaults.filters.min_alpha_fraction == 0.25);
  CHECK(defaults.minhash.threshold == 0.7);
  CHECK(defaults.minhash.num_perm == 256);
  CHECK(defaults.minhash.shingle_size == 5);
  const Json all = to_json(defaults);
  CHECK(to_json(prepare_config_from_json(all, "all.json")) == all);
  Json changed = all;
  changed["dedup"]["threshold"] = 0.85;
  changed["pii"]["keys"] = false;
  changed["shard_bytes"] = 4096;
  const PrepareConfig c = prepare_config_from_json(changed, "c.json");
  CHECK(c.minhash.threshold == 0.85);
  CHECK_FALSE(c.pii.keys);
  CHECK(c.shard_bytes == 4096);

  auto error_of = [](const std::string& text) {
    try {
      prepare_config_from_json(Json::parse(text), "cfg.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(R"({"dedupe": {}})"), Catch::Contains("cfg.json") && Catch::Contains("dedupe"));
  CHECK_THAT(error_of(R"({"dedup": {"thresold": 0.8}})"), Catch::Contains("cfg.json: dedup") &&
                                                              Catch::Contains("thresold"));
  CHECK_THAT(error_of(R"({"dedup": {"threshold": 1.5}})"), Catch::Contains("threshold must be in (0, 1), got 1.5"));
  CHECK_THAT(error_of(R"({"dedup": {"bands": 20}})"), Catch::Contains("bands and rows are set together"));
  CHECK_THAT(error_of(R"({"dedup": {"bands": 30, "rows": 10}})"), Catch::Contains("exceeds num_perm (256)"));
  CHECK_THAT(error_of(R"({"filters": {"min_alpha_fraction": -0.1}})"), Catch::Contains("min_alpha_fraction"));
  CHECK_THAT(error_of(R"({"filters": 3})"), Catch::Contains("\"filters\" must be an object"));
  CHECK_THAT(error_of(R"({"shard_bytes": "big"})"), Catch::Contains("shard_bytes"));
  CHECK_THAT(error_of(R"({"shard_bytes": 10})"), Catch::Contains("shard_bytes must be >= 1024, got 10"));
}
