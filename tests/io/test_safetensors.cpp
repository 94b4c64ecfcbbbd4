// granite/io/safetensors: round trips of every supported dtype, byte-compatibility with the reference writer, files
// written by Python's safetensors (tests/fixtures/hf), every malformed-file rule of the README "Format" section, and
// atomic replacement on save.
#include "granite/io/safetensors.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "granite/core/check.h"
#include "granite/core/json.h"
#include "support/tensor_match.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using granite::SafetensorsFile;

namespace {

std::string le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// A hand-made file: 8-byte length of `header`, `header`, then `data_bytes` bytes 0, 1, 2, ...
std::string make_file(const std::string& dir, const std::string& name, const std::string& header,
                      size_t data_bytes) {
  std::string data(data_bytes, '\0');
  for (size_t i = 0; i < data_bytes; ++i) data[i] = static_cast<char>(i & 0xff);
  const std::string path = dir + "/" + name;
  write_bytes(path, le64(header.size()) + header + data);
  return path;
}

// The message of the granite::Error that opening `path` raises; fails the test if it does not raise one.
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const granite::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("open(" << path << ") threw something other than granite::Error: " << e.what());
  }
  FAIL("open(" << path << ") did not throw");
  return "";
}

std::string save_error(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  try {
    granite::save_safetensors(path, tensors);
  } catch (const granite::Error& e) {
    return e.what();
  }
  FAIL("save_safetensors(" << path << ") did not throw");
  return "";
}

// Bit-exact equality (NaN payloads, -0.0 and all), dtype and shape included.
bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

std::vector<std::string> tmp_files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
  return out;
}

// One tensor of every supported dtype, plus the shapes that are easy to get wrong.
std::vector<std::pair<std::string, torch::Tensor>> every_dtype_tensors() {
  torch::manual_seed(7);
  auto f32 = torch::randn({2, 3, 5});
  f32[0][0][0] = std::numeric_limits<float>::quiet_NaN();
  f32[0][0][1] = -std::numeric_limits<float>::infinity();
  f32[0][0][2] = -0.0f;
  return {
      {"f64", torch::randn({3, 4}, torch::kFloat64)},
      {"f32", f32},
      {"f16", torch::randn({7}).to(torch::kFloat16)},
      {"bf16", torch::randn({4, 4}).to(torch::kBFloat16)},
      {"i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                             std::numeric_limits<int64_t>::max()})},
      {"i32", torch::randint(-100000, 100000, {5, 2}, torch::kInt32)},
      {"i16", torch::randint(-30000, 30000, {3}, torch::kInt16)},
      {"i8", torch::randint(-128, 128, {3, 3}, torch::kInt8)},
      {"u8", torch::arange(0, 256, torch::kInt64).to(torch::kUInt8).reshape({16, 16})},
      {"bool", torch::rand({5}) > 0.5},  // 5 bytes: the next tensor would be misaligned were the order wrong
      {"u8_odd", torch::randint(0, 256, {3}, torch::kUInt8)},
      {"scalar", torch::scalar_tensor(3.5, torch::kFloat32)},  // 0-rank, shape []
      {"empty", torch::zeros({0, 3})},                           // zero-size: begin == end
      {"empty_i64", torch::zeros({2, 0}, torch::kInt64)},
      {"transposed", torch::randn({5, 6}).t()},                                   // non-contiguous
      {"strided", torch::arange(24, torch::kInt32).reshape({4, 6}).slice(1, 0, 6, 2)},  // non-contiguous
      {"expanded", torch::arange(3, torch::kInt16).expand({2, 3})},                    // zero stride
  };
}

granite::Json header_json(const std::string& path, uint64_t* n_out = nullptr) {
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n_out) *n_out = n;
  return granite::Json::parse(bytes.substr(8, n));
}

const char* kFixtureDirs[] = {"bigcode_mha", "bigcode_mqa", "llama_gqa_bias_untied_theta1e7", "llama_mha_bias_tied",
                              "llama_mqa_nobias_headdim"};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("safetensors round trip keeps every dtype, shape and byte", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_roundtrip");
  const std::string path = dir + "/all.safetensors";
  const auto tensors = every_dtype_tensors();
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "unicode \xc3\xbc \xe2\x9c\x93"}, {"empty", ""}};
  granite::save_safetensors(path, tensors, metadata);

  auto file = SafetensorsFile::open(path);
  REQUIRE(file->path() == path);
  REQUIRE(file->keys().size() == tensors.size());
  for (const auto& [name, expected] : tensors) {
    INFO("tensor " << name);
    REQUIRE(file->contains(name));
    const torch::Tensor t = file->tensor(name);
    REQUIRE(t.device().is_cpu());
    REQUIRE(t.scalar_type() == expected.scalar_type());
    REQUIRE(t.sizes() == expected.sizes());
    REQUIRE(t.is_contiguous());
    REQUIRE(same_bytes(t, expected));
    REQUIRE(file->entry(name).dtype == expected.scalar_type());
    REQUIRE(file->entry(name).shape == expected.sizes().vec());
    REQUIRE(file->entry(name).end - file->entry(name).begin ==
            static_cast<uint64_t>(expected.numel() * expected.element_size()));
  }
  REQUIRE(file->tensor("scalar").dim() == 0);
  REQUIRE(file->tensor("scalar").item<float>() == 3.5f);
  REQUIRE(file->tensor("empty").numel() == 0);
  REQUIRE(file->metadata() == metadata);
  REQUIRE_FALSE(file->contains("missing"));

  // load_safetensors: same content in owned memory.
  const auto loaded = granite::load_safetensors(path);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, expected] : tensors) {
    INFO("tensor " << name);
    REQUIRE(same_bytes(loaded.at(name), expected));
  }
}

TEST_CASE("safetensors header is padded, ordered like the reference writer, and aligns every tensor",
          "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_header");
  const std::string path = dir + "/all.safetensors";
  const auto tensors = every_dtype_tensors();
  granite::save_safetensors(path, tensors, {{"format", "pt"}});

  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  const granite::Json header = header_json(path, &n);
  REQUIRE(n % 8 == 0);
  REQUIRE(bytes[8] == '{');
  const std::string text = bytes.substr(8, n);
  const size_t close = text.find_last_of('}');
  REQUIRE(text.find_first_not_of(' ', close + 1) == std::string::npos);  // only spaces after the JSON

  // Key order as written: __metadata__ first, then tensors by descending dtype alignment, then name (tensor.rs).
  // nlohmann::json sorts keys, so read the order back from the text itself.
  std::vector<std::pair<size_t, std::string>> positions;
  for (auto it = header.begin(); it != header.end(); ++it)
    positions.emplace_back(text.find("\"" + it.key() + "\":"), it.key());
  std::sort(positions.begin(), positions.end());
  std::vector<std::string> order;
  for (const auto& p : positions) order.push_back(p.second);
  const std::vector<std::string> expected_order = {
      "__metadata__", "empty_i64", "i64", "f64",  "empty", "f32",  "scalar", "transposed", "i32",
      "strided",      "bf16",      "f16", "expanded", "i16",  "i8",    "u8",   "u8_odd", "bool"};
  REQUIRE(order == expected_order);

  // Data laid out in that order, contiguous from 0, each tensor aligned to its element size in the file.
  uint64_t offset = 0;
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& info = header.at(order[i]);
    const auto begin = info.at("data_offsets")[0].get<uint64_t>();
    const auto end = info.at("data_offsets")[1].get<uint64_t>();
    INFO("tensor " << order[i]);
    REQUIRE(begin == offset);
    const auto itemsize = c10::elementSize(granite::safetensors_dtype_from_string(info.at("dtype").get<std::string>()));
    REQUIRE((8 + n + begin) % itemsize == 0);
    offset = end;
  }
  REQUIRE(bytes.size() == 8 + n + offset);

  // Zero-copy reads: aligned tensors view the mapping, so two reads share one address.
  auto file = SafetensorsFile::open(path);
  for (const char* name : {"f64", "i64", "f32", "bf16", "i16", "u8"}) {
    INFO("tensor " << name);
    REQUIRE(file->tensor(name).data_ptr() == file->tensor(name).data_ptr());
  }
}

TEST_CASE("safetensors writer output is byte-identical to the reference writer's", "[io][safetensors]") {
  // Expected bytes from the reference library's own unit tests (safetensors/src/tensor.rs test_serialization,
  // test_empty).
  const std::string dir = granite::test::scratch_dir("safetensors_reference_bytes");

  SECTION("one F32 tensor") {
    const std::string path = dir + "/attn.safetensors";
    granite::save_safetensors(path, {{"attn.0", torch::arange(6, torch::kFloat32).reshape({1, 2, 3})}});
    const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    REQUIRE(header.size() == 64);
    std::string data(24, '\0');
    const float values[] = {0, 1, 2, 3, 4, 5};
    std::memcpy(data.data(), values, 24);
    REQUIRE(read_bytes(path) == le64(64) + header + data);
  }
  SECTION("no tensors") {
    const std::string path = dir + "/empty.safetensors";
    granite::save_safetensors(path, {});
    REQUIRE(read_bytes(path) == le64(8) + "{}      ");
    auto file = SafetensorsFile::open(path);
    REQUIRE(file->keys().empty());
    REQUIRE(file->metadata().empty());
  }
  SECTION("no tensors, metadata") {
    const std::string path = dir + "/meta.safetensors";
    granite::save_safetensors(path, {}, {{"framework", "pt"}});
    REQUIRE(read_bytes(path) == le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
    REQUIRE(SafetensorsFile::open(path)->metadata().at("framework") == "pt");
  }
  SECTION("empty metadata is omitted") {
    const std::string path = dir + "/nometa.safetensors";
    granite::save_safetensors(path, {{"x", torch::ones({2}, torch::kInt8)}}, {});
    REQUIRE(header_json(path).count("__metadata__") == 0);
  }
}

TEST_CASE("safetensors tensors stay valid after the file object is released", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_lifetime");
  const std::string path = dir + "/x.safetensors";
  const auto expected = torch::arange(1000, torch::kFloat32);
  granite::save_safetensors(path, {{"x", expected}});
  torch::Tensor t = SafetensorsFile::open(path)->tensor("x");  // the SafetensorsFile handle dies here
  REQUIRE(torch::equal(t, expected));  // the tensor's deleter kept the mapping alive
  std::weak_ptr<SafetensorsFile> weak;
  {
    auto file = SafetensorsFile::open(path);
    weak = file;
    t = file->tensor("x");
  }
  REQUIRE_FALSE(weak.expired());
  t = torch::Tensor();
  REQUIRE(weak.expired());  // ...and released it with the last tensor
}

TEST_CASE("safetensors reads misaligned tensors through an aligned copy", "[io][safetensors]") {
  // A header of 70 bytes (not a multiple of 8) puts the data buffer at offset 78: F32 data there is misaligned.
  const std::string dir = granite::test::scratch_dir("safetensors_misaligned");
  std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  header.append(70 - header.size(), ' ');
  const float values[] = {1.5f, -2.0f, 3.25f};
  std::string data(12, '\0');
  std::memcpy(data.data(), values, 12);
  const std::string path = dir + "/misaligned.safetensors";
  write_bytes(path, le64(header.size()) + header + data);

  auto file = SafetensorsFile::open(path);
  const torch::Tensor t = file->tensor("x");
  REQUIRE(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4 == 0);
  REQUIRE(torch::equal(t, torch::tensor({1.5f, -2.0f, 3.25f})));
  REQUIRE(granite::load_safetensors(path).at("x").equal(t));
}

TEST_CASE("safetensors accepts zero-size tensors anywhere and 0-rank tensors in hand-made files",
          "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_zero_size");
  // Listed out of offset order on purpose: the reader sorts by offset (tensor.rs Metadata deserialize).
  const std::string path = make_file(
      dir, "z.safetensors",
      R"({"b":{"dtype":"U8","shape":[],"data_offsets":[8,9]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},)"
      R"("a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"end":{"dtype":"BF16","shape":[4,0],"data_offsets":[9,9]}})",
      9);
  auto file = SafetensorsFile::open(path);
  REQUIRE(file->keys() == std::vector<std::string>{"a", "b", "empty", "end"});
  REQUIRE(file->tensor("a").item<int64_t>() == 0x0706050403020100);  // bytes 0..7, little-endian
  REQUIRE(file->tensor("b").dim() == 0);
  REQUIRE(file->tensor("b").item<uint8_t>() == 8);
  REQUIRE(file->tensor("empty").sizes() == torch::IntArrayRef({0, 3}));
  REQUIRE(file->tensor("end").scalar_type() == torch::kBFloat16);
  REQUIRE(file->tensor("end").sizes() == torch::IntArrayRef({4, 0}));
}

TEST_CASE("safetensors dtype names map both ways", "[io][safetensors]") {
  const std::vector<std::pair<std::string, torch::ScalarType>> table = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  for (const auto& [name, type] : table) {
    INFO(name);
    REQUIRE(granite::safetensors_dtype_from_string(name) == type);
    REQUIRE(granite::safetensors_dtype_to_string(type) == name);
  }
  REQUIRE_THROWS_WITH(granite::safetensors_dtype_from_string("F8_E4M3"),
                      Contains("unsupported") && Contains("F8_E4M3"));
  REQUIRE_THROWS_WITH(granite::safetensors_dtype_from_string("U32"), Contains("unsupported") && Contains("U32"));
  REQUIRE_THROWS_WITH(granite::safetensors_dtype_from_string("F7"), Contains("unknown") && Contains("F7"));
  REQUIRE_THROWS_WITH(granite::safetensors_dtype_from_string("f32"), Contains("unknown") && Contains("f32"));
  REQUIRE_THROWS_AS(granite::safetensors_dtype_to_string(torch::kComplexFloat), granite::Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Files written by Python (HF transformers 5.17 / safetensors 0.8)

TEST_CASE("safetensors reads the HF expected-output fixtures", "[io][safetensors]") {
  const std::string path = granite::test::source_path("tests/fixtures/hf/llama_mha_bias_tied/expected.safetensors");
  auto file = SafetensorsFile::open(path);
  REQUIRE(file->keys() == std::vector<std::string>{"greedy", "input_ids", "logits", "logits_bf16_cuda", "prompt"});
  REQUIRE(file->metadata().at("transformers") == "5.17.0");
  REQUIRE(file->metadata().at("made_by") == "tests/fixtures/make_fixtures.py");

  const auto input_ids = file->tensor("input_ids");
  REQUIRE(input_ids.scalar_type() == torch::kInt64);
  REQUIRE(input_ids.sizes() == torch::IntArrayRef({2, 13}));
  // Values read independently from the file with Python's struct module.
  REQUIRE(input_ids[0][0].item<int64_t>() == 14);
  REQUIRE(input_ids[0][1].item<int64_t>() == 165);
  REQUIRE(input_ids[1][12].item<int64_t>() == 231);
  REQUIRE(torch::equal(file->tensor("prompt"), torch::tensor({252, 138, 32, 225, 151, 134, 44}, torch::kInt64)
                                                   .reshape({1, 7})));
  REQUIRE(torch::equal(file->tensor("greedy"),
                       torch::tensor({44, 200, 122, 63, 33, 47, 59, 148, 209, 38}, torch::kInt64).reshape({1, 10})));

  const auto logits = file->tensor("logits");
  const auto logits_bf16 = file->tensor("logits_bf16_cuda");
  REQUIRE(logits.scalar_type() == torch::kFloat32);
  REQUIRE(logits.sizes() == torch::IntArrayRef({2, 13, 256}));
  REQUIRE(logits_bf16.sizes() == torch::IntArrayRef({2, 13, 256}));
  REQUIRE(logits[0][0][0].item<float>() == 2.5153591632843018f);
  REQUIRE(logits_bf16[0][0][0].item<float>() == 2.53125f);
  REQUIRE(torch::isfinite(logits).all().item<bool>());
  REQUIRE_CLOSE(logits_bf16, logits, 0.2);  // a bf16 run of the same model: close, not equal
  REQUIRE_FALSE(torch::equal(logits_bf16, logits));

  for (const char* dir : kFixtureDirs) {
    INFO(dir);
    auto f = SafetensorsFile::open(granite::test::source_path(std::string("tests/fixtures/hf/") + dir +
                                                              "/expected.safetensors"));
    REQUIRE(f->keys() == file->keys());
    REQUIRE(f->entry("prompt").dtype == torch::kInt64);
    REQUIRE(f->entry("logits").shape == std::vector<int64_t>{2, 13, 256});
    REQUIRE(f->metadata().at("transformers") == "5.17.0");
  }
}

TEST_CASE("safetensors reads HF model weights and re-writes them byte for byte", "[io][safetensors]") {
  const std::string scratch = granite::test::scratch_dir("safetensors_hf_rewrite");
  for (const char* dir : kFixtureDirs) {
    for (const char* name : {"model.safetensors", "expected.safetensors"}) {
      const std::string source = granite::test::source_path(std::string("tests/fixtures/hf/") + dir + "/" + name);
      INFO(source);
      auto file = SafetensorsFile::open(source);
      std::vector<std::pair<std::string, torch::Tensor>> tensors;
      for (const auto& key : file->keys()) tensors.emplace_back(key, file->tensor(key));

      const std::string copy = scratch + "/" + dir + "_" + name;
      granite::save_safetensors(copy, tensors, file->metadata());
      auto reread = SafetensorsFile::open(copy);
      REQUIRE(reread->keys() == file->keys());
      REQUIRE(reread->metadata() == file->metadata());
      for (const auto& key : file->keys()) {
        INFO(key);
        REQUIRE(reread->entry(key).begin == file->entry(key).begin);  // same layout as the Python writer
        REQUIRE(same_bytes(reread->tensor(key), file->tensor(key)));
      }
      // model.safetensors has one metadata key, so nothing is left to HashMap order: the whole file must match.
      if (std::string(name) == "model.safetensors") REQUIRE(read_bytes(copy) == read_bytes(source));
    }
  }

  auto tied =
      SafetensorsFile::open(granite::test::source_path("tests/fixtures/hf/llama_mha_bias_tied/model.safetensors"));
  REQUIRE(tied->metadata() == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(tied->keys().size() == 34);
  REQUIRE(tied->contains("model.embed_tokens.weight"));
  REQUIRE_FALSE(tied->contains("lm_head.weight"));  // tied embeddings: HF does not save the head
  REQUIRE(tied->entry("model.embed_tokens.weight").shape == std::vector<int64_t>{256, 64});
  REQUIRE(tied->entry("model.embed_tokens.weight").dtype == torch::kFloat32);
  auto untied = SafetensorsFile::open(
      granite::test::source_path("tests/fixtures/hf/llama_gqa_bias_untied_theta1e7/model.safetensors"));
  REQUIRE(untied->entry("lm_head.weight").shape == std::vector<int64_t>{256, 64});
  REQUIRE(untied->entry("model.layers.0.self_attn.k_proj.weight").shape == std::vector<int64_t>{32, 64});
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed files: each must raise granite::Error naming the file and what is wrong.

TEST_CASE("safetensors rejects malformed files with specific messages", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_bad");
  // A valid one-tensor entry used as filler.
  const std::string f32x2 = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  SECTION("file shorter than the 8-byte length") {
    const std::string path = dir + "/five.safetensors";
    write_bytes(path, "abcde");
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("5 bytes") && Contains("HeaderTooSmall"));
  }
  SECTION("empty file") {
    const std::string path = dir + "/zero.safetensors";
    write_bytes(path, "");
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("0 bytes"));
  }
  SECTION("header length larger than the file") {
    const std::string path = dir + "/long.safetensors";
    write_bytes(path, le64(1000) + "{}      ");
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("header length 1000") &&
                                       Contains("runs past the end of the file (16 bytes"));
  }
  SECTION("header length over 100,000,000") {
    const std::string path = dir + "/huge.safetensors";
    write_bytes(path, le64(100000001) + "{}      ");
    REQUIRE_THAT(open_error(path),
                 Contains(path) && Contains("100000001") && Contains("100000000") && Contains("HeaderTooLarge"));
  }
  SECTION("header length of 2^64 - 1") {
    const std::string path = dir + "/max.safetensors";
    write_bytes(path, le64(std::numeric_limits<uint64_t>::max()) + "{}      ");
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("HeaderTooLarge"));
  }
  SECTION("header is not JSON") {
    const std::string path = make_file(dir, "notjson.safetensors", "{this is not json}      ", 0);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("not valid JSON"));
  }
  SECTION("header is cut in the middle of the JSON") {
    const std::string path = make_file(dir, "cut.safetensors", R"({"w":{"dtype":"F32","sha)", 0);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("not valid JSON"));
  }
  SECTION("header starts with a space") {
    const std::string path = make_file(dir, "space.safetensors", " {}     ", 0);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("must start with '{'") && Contains("0x20"));
  }
  SECTION("header is a JSON array") {
    const std::string path = make_file(dir, "array.safetensors", "[1, 2]  ", 0);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("must start with '{'") && Contains("0x5b"));
  }
  SECTION("header of length zero") {
    const std::string path = make_file(dir, "nohdr.safetensors", "", 0);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("header is empty"));
  }
  SECTION("header is not valid UTF-8") {
    const std::string path = make_file(dir, "utf8.safetensors", "{\"w\xff\":" + f32x2 + "}", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("not valid JSON"));
  }
  SECTION("duplicate tensor name") {
    const std::string path = make_file(
        dir, "dup.safetensors",
        R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
        16);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("duplicate tensor name 'w'"));
  }
  SECTION("duplicate field inside a tensor") {
    const std::string path = make_file(
        dir, "dupfield.safetensors", R"({"w":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w': duplicate key 'dtype'"));
  }
  SECTION("unknown dtype") {
    const std::string path =
        make_file(dir, "f7.safetensors", R"({"w":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("unknown dtype 'F7'"));
  }
  SECTION("unsupported dtype F8_E4M3") {
    const std::string path =
        make_file(dir, "f8.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2);
    REQUIRE_THAT(open_error(path),
                 Contains(path) && Contains("tensor 'w'") && Contains("unsupported dtype 'F8_E4M3'"));
  }
  SECTION("unsupported dtype U64") {
    const std::string path =
        make_file(dir, "u64.safetensors", R"({"w":{"dtype":"U64","shape":[1],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("unsupported dtype 'U64'"));
  }
  SECTION("negative shape entry") {
    const std::string path =
        make_file(dir, "neg.safetensors", R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path),
                 Contains(path) && Contains("tensor 'w'") && Contains("shape [2,-2] has a negative entry -2"));
  }
  SECTION("fractional shape entry") {
    const std::string path =
        make_file(dir, "frac.safetensors", R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("must hold integers"));
  }
  SECTION("shape whose size overflows") {
    const std::string path = make_file(
        dir, "overflow.safetensors",
        R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("ValidationOverflow"));
  }
  SECTION("missing data_offsets") {
    const std::string path = make_file(dir, "nooff.safetensors", R"({"w":{"dtype":"F32","shape":[2]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("missing key 'data_offsets'"));
  }
  SECTION("unknown field") {
    const std::string path = make_file(
        dir, "field.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offset":3}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("unknown key 'offset'"));
  }
  SECTION("data_offsets with three entries") {
    const std::string path =
        make_file(dir, "three.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("two integers"));
  }
  SECTION("data_offsets with begin > end") {
    const std::string path =
        make_file(dir, "backwards.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("[8, 0] have begin > end"));
  }
  SECTION("offsets pointing past the buffer") {
    const std::string path =
        make_file(dir, "past.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") &&
                                       Contains("[16, 24] run past the end of the data buffer, which is 8 bytes"));
  }
  SECTION("overlapping tensors") {
    const std::string path = make_file(
        dir, "overlap.safetensors",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
        12);
    REQUIRE_THAT(open_error(path),
                 Contains(path) && Contains("tensor 'b'") && Contains("overlap tensor 'a' which ends at 8"));
  }
  SECTION("the same bytes claimed by two tensors") {
    const std::string path = make_file(
        dir, "alias.safetensors",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
        8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("overlap tensor 'a'"));
  }
  SECTION("hole between tensors") {
    const std::string path = make_file(
        dir, "hole.safetensors",
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
        12);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("bytes [4, 8) of the data buffer belong to no tensor") &&
                                       Contains("tensor 'b'"));
  }
  SECTION("hole before the first tensor") {
    const std::string path =
        make_file(dir, "lead.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("bytes [0, 4)"));
  }
  SECTION("data_offsets disagree with shape x itemsize") {
    const std::string path = make_file(
        dir, "model.safetensors", R"({"lm_head.weight":{"dtype":"F32","shape":[4,8],"data_offsets":[0,100]}})", 100);
    REQUIRE_THAT(open_error(path),
                 Contains(path + ": tensor 'lm_head.weight': data_offsets [0, 100] hold 100 bytes but shape [4, 8] "
                                 "of F32 needs 128"));
  }
  SECTION("trailing bytes after the last tensor") {
    const std::string path = make_file(dir, "trail.safetensors", "{\"w\":" + f32x2 + "}", 10);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("2 trailing bytes after the last tensor"));
  }
  SECTION("bytes but no tensors") {
    const std::string path = make_file(dir, "notensor.safetensors", "{}      ", 3);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("3 trailing bytes"));
  }
  SECTION("data buffer truncated") {
    const std::string path = dir + "/truncated.safetensors";
    granite::save_safetensors(path, {{"a", torch::ones({4})}, {"b", torch::ones({8}, torch::kInt64)}});
    REQUIRE_NOTHROW(SafetensorsFile::open(path));
    fs::resize_file(path, fs::file_size(path) - 3);
    REQUIRE_THAT(open_error(path),
                 Contains(path) && Contains("tensor 'a'") && Contains("run past the end of the data buffer"));
  }
  SECTION("duplicate metadata key") {
    const std::string path =
        make_file(dir, "dupmeta.safetensors", R"({"__metadata__":{"k":"a","k":"b"},"w":)" + f32x2 + "}", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("__metadata__: duplicate key 'k'"));
  }
  SECTION("metadata value that is a number") {
    const std::string path =
        make_file(dir, "meta.safetensors", R"({"__metadata__":{"format":"pt","n":3},"w":)" + f32x2 + "}", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("key 'n' must be a string, got 3"));
  }
  SECTION("metadata that is not an object") {
    const std::string path = make_file(dir, "meta2.safetensors", R"({"__metadata__":["pt"],"w":)" + f32x2 + "}", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("__metadata__ must be an object"));
  }
  SECTION("tensor entry that is not an object") {
    const std::string path = make_file(dir, "entry.safetensors", R"({"w":[0,8]})", 8);
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("tensor 'w'") && Contains("expected an object"));
  }
  SECTION("nonexistent path") {
    const std::string path = dir + "/does_not_exist.safetensors";
    REQUIRE_THAT(open_error(path), Contains(path) && Contains("cannot open") && Contains("No such file"));
  }
  SECTION("a directory") {
    REQUIRE_THAT(open_error(dir), Contains(dir) && Contains("not a regular file"));
  }
}

TEST_CASE("safetensors lookups of missing tensors name the file and key", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_missing_key");
  const std::string path = dir + "/x.safetensors";
  granite::save_safetensors(path, {{"x", torch::ones({2})}});
  auto file = SafetensorsFile::open(path);
  REQUIRE_THROWS_WITH(file->tensor("y"), Contains(path) && Contains("no tensor named 'y'"));
  REQUIRE_THROWS_WITH(file->entry("y"), Contains(path) && Contains("no tensor named 'y'"));
}

TEST_CASE("safetensors save rejects what it cannot store, naming the tensor", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_save_errors");
  const std::string path = dir + "/x.safetensors";
  REQUIRE_THAT(save_error(path, {{"a", torch::ones({2})}, {"b", torch::ones({2})}, {"a", torch::zeros({3})}}),
               Contains(path) && Contains("duplicate tensor name 'a'"));
  REQUIRE_THAT(save_error(path, {{"c", torch::ones({2}, torch::kComplexFloat)}}),
               Contains(path) && Contains("tensor 'c'") && Contains("ComplexFloat"));
  REQUIRE_THAT(save_error(path, {{"u", torch::Tensor()}}), Contains(path) && Contains("tensor 'u' is undefined"));
  REQUIRE_THAT(save_error(path, {{"__metadata__", torch::ones({2})}}), Contains(path) && Contains("reserved"));
  REQUIRE_THAT(save_error(path, {{"bad\xff", torch::ones({2})}}), Contains(path) && Contains("UTF-8"));
  REQUIRE_FALSE(fs::exists(path));
  REQUIRE(tmp_files_in(dir).empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Atomic writes

TEST_CASE("safetensors save replaces files atomically and leaves them alone on failure", "[io][safetensors]") {
  const std::string dir = granite::test::scratch_dir("safetensors_atomic");
  const std::string path = dir + "/model.safetensors";
  const auto big = torch::arange(4096, torch::kFloat64);
  granite::save_safetensors(path, {{"big", big}, {"other", torch::ones({3, 3})}}, {{"version", "1"}});
  const auto old_size = fs::file_size(path);

  SECTION("saving over an existing file replaces it fully") {
    const auto small = torch::tensor({1, 2, 3}, torch::kInt32);
    granite::save_safetensors(path, {{"small", small}});
    const std::string fresh = dir + "/fresh.safetensors";
    granite::save_safetensors(fresh, {{"small", small}});
    REQUIRE(fs::file_size(path) < old_size);
    REQUIRE(read_bytes(path) == read_bytes(fresh));  // nothing of the old, longer file remains
    auto file = SafetensorsFile::open(path);
    REQUIRE(file->keys() == std::vector<std::string>{"small"});
    REQUIRE(file->metadata().empty());
    REQUIRE(torch::equal(file->tensor("small"), small));
    REQUIRE(tmp_files_in(dir).empty());
  }
  SECTION("a mapped file keeps its old content when replaced") {
    auto old_file = SafetensorsFile::open(path);
    const torch::Tensor old_view = old_file->tensor("big");
    granite::save_safetensors(path, {{"big", torch::zeros({4096}, torch::kFloat64)}});
    REQUIRE(torch::equal(old_view, big));  // rename() gave the path a new inode; our mapping is of the old one
    REQUIRE(SafetensorsFile::open(path)->tensor("big").sum().item<double>() == 0.0);
  }
  SECTION("a save that fails validation leaves the target byte-identical") {
    const std::string before = read_bytes(path);
    REQUIRE_THAT(save_error(path, {{"x", torch::ones({2})}, {"x", torch::ones({2})}}),
                 Contains("duplicate tensor name 'x'"));
    REQUIRE(read_bytes(path) == before);
    REQUIRE(tmp_files_in(dir).empty());
    REQUIRE_THAT(save_error(path, {{"x", torch::ones({2})}, {"c", torch::ones({2}, torch::kComplexDouble)}}),
                 Contains("tensor 'c'"));
    REQUIRE(read_bytes(path) == before);
    REQUIRE(tmp_files_in(dir).empty());
  }
  SECTION("a save into a missing directory fails and creates nothing") {
    const std::string before = read_bytes(path);
    const std::string missing = dir + "/no/such/dir/model.safetensors";
    REQUIRE_THAT(save_error(missing, {{"x", torch::ones({2})}}), Contains(missing));
    REQUIRE_FALSE(fs::exists(dir + "/no"));
    REQUIRE(read_bytes(path) == before);
    REQUIRE(tmp_files_in(dir).empty());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GPU input (registered only where LibTorch has CUDA; see tests/CMakeLists.txt)

TEST_CASE("safetensors saves CUDA tensors", "[io][safetensors][cuda]") {
  const std::string dir = granite::test::scratch_dir("safetensors_cuda");
  const std::string path = dir + "/cuda.safetensors";
  const auto cpu = torch::randn({6, 4});
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"w", cpu.to(torch::kCUDA)},
      {"w_t", cpu.to(torch::kCUDA).t()},
      {"w_bf16", cpu.to(torch::kCUDA, torch::kBFloat16)},
  };
  granite::save_safetensors(path, tensors);
  const auto loaded = granite::load_safetensors(path);
  REQUIRE(loaded.at("w").device().is_cpu());
  REQUIRE(same_bytes(loaded.at("w"), cpu));
  REQUIRE(same_bytes(loaded.at("w_t"), cpu.t()));
  REQUIRE(same_bytes(loaded.at("w_bf16"), cpu.to(torch::kBFloat16)));
}
