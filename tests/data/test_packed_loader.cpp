// The packed, resumable loader (granite/data/packed_loader.h) over real token shards: packing boundaries, position
// and segment ids, per-epoch shuffling, the mixture's exact proportions and token accounting, rank sharding, resume
// (same and different world size) equal to an uninterrupted run, worker-count independence, and bad input.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "granite/core/check.h"
#include "granite/data/indexed_dataset.h"
#include "granite/data/packed_loader.h"
#include "granite/data/token_stream.h"
#include "support/paths.h"
#include "support/real_code.h"

using Catch::Matchers::Contains;
using granite::LoaderConfig;
using granite::LoaderState;
using granite::Objective;
using granite::PackedBatch;
using granite::PackedLoader;
using granite::TokenId;

namespace {

const granite::Tokenizer& starcoder() { return granite::test::starcoder_tokenizer(); }

// Tokenized real Python files, EOS after each (what granite-data prepare writes), documents [first, first + count).
std::vector<std::vector<TokenId>> real_documents(size_t first, size_t count) {
  static const std::vector<std::vector<TokenId>> all = [] {
    std::vector<std::vector<TokenId>> docs;
    granite::EncodeOptions plain;
    plain.parse_added_tokens = false;
    for (const std::string& text : granite::test::cpython_files(20000)) {
      if (docs.size() == 120) break;
      auto ids = starcoder().encode(text, plain);
      ids.push_back(*starcoder().special_tokens().eos);
      docs.push_back(ids);
    }
    return docs;
  }();
  REQUIRE(first + count <= all.size());
  return {all.begin() + std::ptrdiff_t(first), all.begin() + std::ptrdiff_t(first + count)};
}

// Writes the documents as shards of `per_shard` documents into a fresh directory; returns it.
std::string write_shards(const std::string& name, const std::vector<std::vector<TokenId>>& docs, size_t per_shard) {
  const std::string dir = granite::test::process_scratch_dir(name);
  for (size_t s = 0; s * per_shard < docs.size(); ++s) {
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "/shard-%05zu", s);
    granite::IndexedDatasetWriter writer(dir + prefix, granite::TokenDtype::UInt16);
    for (size_t d = s * per_shard; d < std::min(docs.size(), (s + 1) * per_shard); ++d) writer.add_document(docs[d]);
    writer.finish();
  }
  return dir;
}

const std::string& code_dir() {
  static const std::string dir = write_shards("loader_code", real_documents(0, 60), 25);  // per process
  return dir;
}
const std::string& text_dir() {
  static const std::string dir = write_shards("loader_text", real_documents(60, 40), 40);
  return dir;
}

LoaderConfig base_config(int64_t seq_len = 64, int64_t micro_batch = 2) {
  LoaderConfig c;
  c.sources = {{"code", {code_dir()}, 1.0}};
  c.seq_len = seq_len;
  c.micro_batch = micro_batch;
  c.seed = 1234;
  c.fim.rate = 0;
  return c;
}

std::vector<PackedBatch> take(PackedLoader& loader, int n) {
  std::vector<PackedBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(loader.next());
  return out;
}

bool same_rows(const PackedBatch& a, const PackedBatch& b) {
  return a.input_ids == b.input_ids && a.labels == b.labels && a.objectives == b.objectives &&
         a.position_ids == b.position_ids && a.segment_ids == b.segment_ids && a.sequences == b.sequences &&
         a.row_source == b.row_source;
}

}  // namespace

TEST_CASE("packed sequences cut the document stream with one shared token, positions restart per document",
          "[data][loader]") {
  LoaderConfig c = base_config(64, 3);
  c.shuffle = false;
  const auto docs = real_documents(0, 60);
  std::vector<TokenId> stream;
  for (const auto& d : docs) stream.insert(stream.end(), d.begin(), d.end());
  const TokenId eos = *starcoder().special_tokens().eos;
  PackedLoader loader(c, starcoder());
  int64_t row_index = 0;
  for (const PackedBatch& b : take(loader, 8)) {
    REQUIRE(b.rows == 3);
    REQUIRE(b.seq_len == 64);
    for (int64_t r = 0; r < b.rows; ++r, ++row_index) {
      CHECK(b.sequences[size_t(r)] == row_index);
      int32_t position = 0, segment = 0;
      for (int64_t t = 0; t < 64; ++t) {
        const size_t i = size_t(r * 64 + t), s = size_t(row_index * 64 + t);
        REQUIRE(b.input_ids[i] == stream[s]);
        REQUIRE(b.labels[i] == stream[s + 1]);  // the last label is the next row's first input
        CHECK(b.objectives[i] == Objective::kClm);
        CHECK(b.position_ids[i] == position);
        CHECK(b.segment_ids[i] == segment);
        ++position;
        if (stream[s] == eos) position = 0, ++segment;
      }
    }
  }
  CHECK(loader.state().next_sequence == 24);
  CHECK(loader.state().sources[0].clm == 24 * 64);
}

TEST_CASE("each epoch holds every document once, in a new order", "[data][loader]") {
  granite::TokenStream stream({code_dir()}, 77, true);
  const auto docs = real_documents(0, 60);
  REQUIRE(stream.documents() == 60);
  int64_t total = 0;
  for (const auto& d : docs) total += int64_t(d.size());
  REQUIRE(stream.tokens_per_epoch() == total);
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> order;
    std::multiset<std::vector<TokenId>> seen;
    int64_t position = epoch * total;
    while (position < (epoch + 1) * total) {
      const int64_t d = stream.document_at(position);
      order.push_back(d);
      std::vector<TokenId> tokens;
      stream.read(position, int64_t(docs[size_t(d)].size()), tokens);
      CHECK(tokens == docs[size_t(d)]);
      seen.insert(tokens);
      position += int64_t(docs[size_t(d)].size());
    }
    CHECK(seen == std::multiset<std::vector<TokenId>>(docs.begin(), docs.end()));
    orders.push_back(order);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);
  // A read across the epoch boundary is the end of one epoch followed by the start of the next.
  std::vector<TokenId> across, tail, head;
  stream.read(total - 10, 20, across);
  stream.read(total - 10, 10, tail);
  stream.read(total, 10, head);
  tail.insert(tail.end(), head.begin(), head.end());
  CHECK(across == tail);
}

TEST_CASE("the mixture gives each source its weight exactly, and every token is accounted for", "[data][loader]") {
  LoaderConfig c = base_config(32, 5);
  c.sources = {{"code", {code_dir()}, 4.0}, {"text", {text_dir()}, 1.0}};  // 80% / 20%, as in phase 2
  c.fim.rate = 0.5;
  PackedLoader loader(c, starcoder());
  int64_t rows = 0;
  std::map<int32_t, int64_t> by_source;
  for (const PackedBatch& b : take(loader, 40)) {
    for (int32_t s : b.row_source) ++by_source[s];
    rows += b.rows;
    // Within every prefix of the run, each source is within one sequence of its share.
    const auto& state = b.state_after;
    const double n = double(state.next_sequence);
    CHECK(std::abs(double(state.sources[0].sequences) - 0.8 * n) <= 1.0);
    CHECK(std::abs(double(state.sources[1].sequences) - 0.2 * n) <= 1.0);
  }
  CHECK(rows == 200);
  CHECK(by_source[0] == 160);
  CHECK(by_source[1] == 40);
  const LoaderState& state = loader.state();
  for (size_t s = 0; s < 2; ++s) {
    const auto& t = state.sources[s];
    CHECK(t.clm + t.fim + t.ignored == by_source[int32_t(s)] * 32);
    CHECK(t.fim > 0);
  }
}

TEST_CASE("labels are ignored exactly where the objective is, FIM shows in the objectives", "[data][loader]") {
  LoaderConfig c = base_config(128, 4);
  c.fim.rate = 0.5;
  PackedLoader loader(c, starcoder());
  int64_t fim = 0, clm = 0, ignored = 0;
  for (const PackedBatch& b : take(loader, 10)) {
    for (size_t i = 0; i < b.labels.size(); ++i) {
      CHECK((b.labels[i] == -100) == (b.objectives[i] == Objective::kIgnore));
      fim += b.objectives[i] == Objective::kFim;
      clm += b.objectives[i] == Objective::kClm;
      ignored += b.objectives[i] == Objective::kIgnore;
    }
  }
  CHECK(fim > 0);
  CHECK(clm > 0);
  CHECK(loader.state().fim.psm + loader.state().fim.spm > 0);
  CHECK(loader.state().sources[0].ignored == ignored);
}

TEST_CASE("ranks split the global sequence order, batches do not depend on the worker count", "[data][loader]") {
  LoaderConfig c = base_config(48, 2);
  c.sources = {{"code", {code_dir()}, 3.0}, {"text", {text_dir()}, 1.0}};
  c.fim.rate = 0.5;
  LoaderConfig wide = c;
  wide.micro_batch = 4;
  PackedLoader single(wide, starcoder());
  PackedLoader rank0(c, starcoder(), 0, 2), rank1(c, starcoder(), 1, 2);
  LoaderConfig many_workers = c;
  many_workers.workers = 3;
  many_workers.prefetch = 2;
  PackedLoader rank0_workers(many_workers, starcoder(), 0, 2);
  for (int step = 0; step < 6; ++step) {
    const PackedBatch all = single.next(), a = rank0.next(), b = rank1.next(), a2 = rank0_workers.next();
    CHECK(same_rows(a, a2));
    // Global sequences 4k..4k+3: rank 0 has the even ones, rank 1 the odd ones, with the same tokens.
    const int64_t L = 48;
    for (int64_t r = 0; r < 4; ++r) {
      const PackedBatch& part = r % 2 == 0 ? a : b;
      const int64_t pr = r / 2;
      CHECK(part.sequences[size_t(pr)] == all.sequences[size_t(r)]);
      CHECK(std::equal(part.input_ids.begin() + pr * L, part.input_ids.begin() + (pr + 1) * L,
                       all.input_ids.begin() + r * L));
      CHECK(std::equal(part.objectives.begin() + pr * L, part.objectives.begin() + (pr + 1) * L,
                       all.objectives.begin() + r * L));
    }
    CHECK(a.state_after.next_sequence == all.state_after.next_sequence);
    CHECK(b.state_after.next_sequence == all.state_after.next_sequence);
  }
}

TEST_CASE("a resumed loader gives the batches of an uninterrupted run", "[data][loader][resume]") {
  LoaderConfig c = base_config(40, 3);
  c.sources = {{"code", {code_dir()}, 4.0}, {"text", {text_dir()}, 1.0}};
  c.fim.rate = 0.5;
  c.fim.spm_rate = 0.5;
  // Long enough to wrap both sources' epochs (the text source is a few thousand tokens).
  PackedLoader uninterrupted(c, starcoder());
  const auto reference = take(uninterrupted, 60);

  SECTION("same world size, state through JSON") {
    LoaderState saved;
    {
      PackedLoader first(c, starcoder());
      take(first, 25);  // and more are prefetched: the state is that of the 25th
      saved = granite::loader_state_from_json(granite::Json::parse(granite::to_json(first.state()).dump()), "state");
    }
    CHECK(saved.batches == 25);
    PackedLoader resumed(c, starcoder(), 0, 1, saved);
    for (int i = 25; i < 60; ++i) {
      INFO("batch " << i);
      REQUIRE(same_rows(resumed.next(), reference[size_t(i)]));
    }
    CHECK(granite::to_json(resumed.state()) == granite::to_json(uninterrupted.state()));
  }
  SECTION("two ranks of half the batch, resumed on one") {
    LoaderConfig half = c;
    half.micro_batch = 1;
    LoaderConfig whole = c;
    whole.micro_batch = 2;
    PackedLoader reference_whole(whole, starcoder());
    const auto expected = take(reference_whole, 30);
    LoaderState saved;
    {
      PackedLoader r0(half, starcoder(), 0, 2), r1(half, starcoder(), 1, 2);
      take(r0, 12);
      take(r1, 12);
      CHECK(r0.state().next_sequence == r1.state().next_sequence);
      saved = r0.state();
    }
    CHECK(saved.next_sequence == 24);
    PackedLoader resumed(whole, starcoder(), 0, 1, saved);
    for (int i = 12; i < 30; ++i) {
      const PackedBatch b = resumed.next();
      INFO("batch " << i);
      CHECK(b.sequences == expected[size_t(i)].sequences);
      CHECK(b.input_ids == expected[size_t(i)].input_ids);
      CHECK(b.objectives == expected[size_t(i)].objectives);
    }
  }
}

TEST_CASE("the loader rejects bad configs, sources and states with clear errors", "[data][loader][errors]") {
  using granite::Json;
  auto parse = [](const std::string& text) { return granite::loader_config_from_json(Json::parse(text), "data.json"); };
  CHECK_THROWS_WITH(parse(R"({"sources": [{"path": "x"}], "seq_len": 8, "batch": 2})"), Contains("batch"));
  CHECK_THROWS_WITH(parse(R"({"sources": []})"), Contains("sources"));
  CHECK_THROWS_WITH(parse(R"({"sources": [{"path": "x", "weight": 0}]})"), Contains("weight must be > 0"));
  CHECK_THROWS_WITH(parse(R"({"sources": [{"path": "x"}], "fim_rate": 1.5})"), Contains("fim_rate"));
  CHECK_THROWS_WITH(parse(R"({"sources": [{"weight": 1}]})"), Contains("path"));
  const LoaderConfig parsed = parse(R"({"sources": [{"name": "c", "paths": ["a", "b"], "weight": 0.8}],
                                       "seq_len": 16, "micro_batch": 2, "fim_rate": 0.25})");
  CHECK(parsed.sources[0].paths == std::vector<std::string>{"a", "b"});
  CHECK(parsed.fim.rate == 0.25);
  CHECK(granite::loader_config_from_json(granite::to_json(parsed), "again").seq_len == 16);

  LoaderConfig c = base_config();
  c.sources = {{"missing", {granite::test::scratch_dir("loader_empty") + "/nothing"}, 1.0}};
  CHECK_THROWS_WITH(PackedLoader(c, starcoder()), Contains("nothing"));
  c.sources = {{"empty", {granite::test::scratch_dir("loader_empty")}, 1.0}};
  CHECK_THROWS_WITH(PackedLoader(c, starcoder()), Contains("no token shards"));
  LoaderState wrong;
  wrong.sources.resize(2);
  CHECK_THROWS_WITH(PackedLoader(base_config(), starcoder(), 0, 1, wrong), Contains("sources"));
  CHECK_THROWS_WITH(PackedLoader(base_config(), starcoder(), 2, 2), Contains("rank 2"));
}

TEST_CASE("the shipped loader configs parse, phase 2 mixes 80% code and 20% language", "[data][loader]") {
  for (const char* name : {"configs/data/loader-phase1.json", "configs/data/loader-phase2.json"}) {
    const std::string path = granite::test::source_path(name);
    INFO(path);
    const LoaderConfig c = granite::loader_config_from_json(granite::read_json_file(path), path);
    CHECK(c.fim.rate == 0.5);
    CHECK(c.fim.spm_rate == 0.5);
  }
  const std::string phase2 = granite::test::source_path("configs/data/loader-phase2.json");
  const LoaderConfig c = granite::loader_config_from_json(granite::read_json_file(phase2), phase2);
  REQUIRE(c.sources.size() == 2);
  CHECK(c.sources[0].weight / (c.sources[0].weight + c.sources[1].weight) == Approx(0.8));
}
