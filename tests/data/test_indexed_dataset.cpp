// Megatron-layout token shards (.bin/.idx): byte layout, round trips, atomic visibility and corrupt-file errors.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "granite/core/check.h"
#include "granite/data/indexed_dataset.h"
#include "support/tensor_match.h"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
template <typename T>
std::string le(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}
}  // namespace

TEST_CASE("indexed dataset files have Megatron's exact byte layout", "[data][indexed]") {
  const auto prefix = granite::test::scratch_dir("indexed_layout") + "/shard";
  granite::IndexedDatasetWriter w(prefix, granite::TokenDtype::UInt16);
  w.add_document({1, 2, 3});
  w.add_document({65535});
  w.finish();
  REQUIRE(read_bytes(prefix + ".bin") == std::string("\x01\x00\x02\x00\x03\x00\xff\xff", 8));
  std::string idx("MMIDIDX\0\0", 9);
  idx += le<uint64_t>(1) + le<uint8_t>(8) + le<uint64_t>(2) + le<uint64_t>(3);  // version, uint16, 2 seqs, 3 doc idx
  idx += le<int32_t>(3) + le<int32_t>(1);                                       // sequence_lengths
  idx += le<int64_t>(0) + le<int64_t>(6);                                       // sequence_pointers (bytes)
  idx += le<int64_t>(0) + le<int64_t>(1) + le<int64_t>(2);                      // document_indices
  REQUIRE(read_bytes(prefix + ".idx") == idx);
}

TEST_CASE("indexed dataset round trip, slices and dtype choice", "[data][indexed]") {
  CHECK(granite::token_dtype_for_vocab(49152) == granite::TokenDtype::UInt16);  // Granite / StarCoder
  CHECK(granite::token_dtype_for_vocab(151669) == granite::TokenDtype::Int32);  // Qwen-3 sized
  for (auto dtype : {granite::TokenDtype::UInt16, granite::TokenDtype::Int32}) {
    const auto prefix = granite::test::scratch_dir("indexed_roundtrip") + "/shard";
    std::vector<std::vector<granite::TokenId>> docs{{5, 6, 7, 8}, {}, {0}, {49151, 0, 12, 3, 3, 3}};
    granite::IndexedDatasetWriter w(prefix, dtype);
    for (const auto& d : docs) w.add_document(d);
    REQUIRE(w.tokens() == 11);
    w.finish();
    auto ds = granite::IndexedDataset::open(prefix);
    REQUIRE(ds->size() == 4);
    REQUIRE(ds->dtype() == dtype);
    REQUIRE(ds->total_tokens() == 11);
    for (size_t i = 0; i < docs.size(); ++i) REQUIRE(ds->get(int64_t(i)) == docs[i]);
    REQUIRE(ds->get(3, 2, 3) == std::vector<granite::TokenId>{12, 3, 3});
    REQUIRE(ds->document_indices() == std::vector<int64_t>{0, 1, 2, 3, 4});
    REQUIRE_THROWS_WITH(ds->get(3, 4, 3), Contains("slice [4, 7) of sequence 3 (6 tokens)"));
    REQUIRE_THROWS_WITH(ds->get(4), Contains("sequence 4 out of range [0, 4)"));
  }
}

TEST_CASE("an unfinished shard is invisible, bad ids and corrupt files are clear errors", "[data][indexed][errors]") {
  const auto dir = granite::test::scratch_dir("indexed_errors");
  {
    granite::IndexedDatasetWriter w(dir + "/partial", granite::TokenDtype::UInt16);
    w.add_document({1, 2});
    REQUIRE_THROWS_WITH(w.add_document({3, 70000}), Contains("document 1 token 1 has id 70000"));
  }  // destroyed without finish()
  for (const auto& e : fs::directory_iterator(dir)) FAIL("left behind: " << e.path());
  REQUIRE_THROWS_WITH(granite::IndexedDataset::open(dir + "/partial"), Contains("partial.idx: cannot open index"));

  const auto prefix = dir + "/shard";
  granite::IndexedDatasetWriter w(prefix, granite::TokenDtype::UInt16);
  w.add_document({1, 2, 3, 4});
  w.finish();
  const std::string idx = read_bytes(prefix + ".idx");
  SECTION("bad magic") {
    std::ofstream(prefix + ".idx", std::ios::binary) << "NOTANIDX" << idx.substr(8);
    REQUIRE_THROWS_WITH(granite::IndexedDataset::open(prefix), Contains("bad magic"));
  }
  SECTION("truncated index") {
    std::ofstream(prefix + ".idx", std::ios::binary) << idx.substr(0, idx.size() - 5);
    REQUIRE_THROWS_WITH(granite::IndexedDataset::open(prefix), Contains("truncated index"));
  }
  SECTION("unknown dtype code") {
    std::string bad = idx;
    bad[17] = 6;  // float64
    std::ofstream(prefix + ".idx", std::ios::binary) << bad;
    REQUIRE_THROWS_WITH(granite::IndexedDataset::open(prefix), Contains("dtype code 6"));
  }
  SECTION(".bin shorter than the index says") {
    fs::resize_file(prefix + ".bin", 6);
    REQUIRE_THROWS_WITH(granite::IndexedDataset::open(prefix),
                        Contains("sequence 0 (4 tokens at byte 0) lies outside") && Contains("(6 bytes)"));
  }
}
