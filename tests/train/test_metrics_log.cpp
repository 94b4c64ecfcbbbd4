// Metrics logging (granite/train/metrics_log.h): CRC-32C against published check values, TensorBoard event files
// byte for byte against hand-built records (and the 12-byte header every real tfevents file starts with), read-back
// with CRC verification and its errors, metrics.jsonl lines, appending and repair, and path errors.
// REQUIRE throughout, never CHECK (see tests/train/test_objective_loss.cpp: glog's CHECK under the precompiled header).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "granite/core/check.h"
#include "granite/core/json.h"
#include "granite/train/metrics_log.h"
#include "support/paths.h"

using Catch::Matchers::Contains;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

std::string hex_bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

std::string little_endian(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

// TFRecord framing, written out here independently of the library's.
std::string frame(const std::string& data) {
  const std::string length = little_endian(data.size(), 8);
  return length + little_endian(granite::masked_crc32c(length.data(), 8), 4) + data +
         little_endian(granite::masked_crc32c(data.data(), data.size()), 4);
}

// The one event file in `dir`.
std::string only_event_file(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path().string());
  REQUIRE(files.size() == 1);
  return files[0];
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

double as_float(double v) { return static_cast<double>(static_cast<float>(v)); }

}  // namespace

TEST_CASE("crc32c: published check values", "[train][metrics]") {
  const std::string digits = "123456789";
  REQUIRE(granite::crc32c(digits.data(), digits.size()) == 0xE3069283u);
  // RFC 3720 (iSCSI) B.4 vectors.
  std::string zeros(32, '\0'), ones(32, '\xFF'), ascending, descending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  for (int i = 31; i >= 0; --i) descending.push_back(static_cast<char>(i));
  REQUIRE(granite::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  REQUIRE(granite::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  REQUIRE(granite::crc32c(ascending.data(), ascending.size()) == 0x46DD794Eu);
  REQUIRE(granite::crc32c(descending.data(), descending.size()) == 0x113FDB5Cu);
  REQUIRE(granite::crc32c("", 0) == 0u);
  // Chaining: a CRC over two calls equals one over the concatenation.
  REQUIRE(granite::crc32c(digits.data() + 4, 5, granite::crc32c(digits.data(), 4)) == 0xE3069283u);

  // Masked: ((c >> 15) | (c << 17)) + 0xa282ead8.
  REQUIRE(granite::masked_crc32c("", 0) == 0xA282EAD8u);
  REQUIRE(granite::masked_crc32c(digits.data(), digits.size()) == 0xC78AB0E5u);
  // Every real tfevents file starts with the 24-byte file_version record: 18 00 00 00 00 00 00 00 | a3 7f 4b 22.
  const std::string length24 = little_endian(24, 8);
  REQUIRE(granite::masked_crc32c(length24.data(), 8) == 0x224B7FA3u);
}

TEST_CASE("tensorboard: a one-scalar Event is the hand-built protobuf", "[train][metrics]") {
  // Value{tag "loss", simple_value 1.5f} = 0A 04 'l' 'o' 's' 's' 15 00 00 C0 3F (11 bytes); Summary = 0A 0B Value
  // (13 bytes); Event = 09 <2.0 as f64 LE> 10 07 2A 0D Summary.
  const std::string expected = hex_bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x10, 0x07, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A,
                                          0x04, 'l', 'o', 's', 's', 0x15, 0x00, 0x00, 0xC0, 0x3F});
  REQUIRE(granite::encode_scalar_event(7, {{"loss", 1.5}}, 2.0) == expected);

  // Step 300 is a two-byte varint (AC 02); two values (8 bytes each, 10 framed) share one Summary (20 bytes).
  const std::string two = granite::encode_scalar_event(300, {{"a", 1.0}, {"b", -2.0}}, 0.0);
  const std::string expected_two =
      hex_bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xAC, 0x02, 0x2A, 0x14, 0x0A, 0x08, 0x0A, 0x01, 'a', 0x15, 0x00,
                 0x00, 0x80, 0x3F, 0x0A, 0x08, 0x0A, 0x01, 'b', 0x15, 0x00, 0x00, 0x00, 0xC0});
  REQUIRE(two == expected_two);
}

TEST_CASE("tensorboard: the file is the file_version record, then one framed Event per step", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_tb_bytes") + "/tb";
  const double before = granite::unix_time_now();
  std::string path;
  {
    granite::TensorBoardWriter writer(dir);  // creates the directory
    path = writer.path();
    writer.add_scalars(7, {{"loss", 1.5}}, 2.0);
    writer.add_scalars(8, {}, 3.0);  // nothing
  }
  REQUIRE(path == only_event_file(dir));
  REQUIRE_THAT(std::filesystem::path(path).filename().string(), Contains("events.out.tfevents."));

  const std::string bytes = read_bytes(path);
  // Record 1: Event{wall_time, file_version "brain.Event:2"} = 09 <f64> 1A 0D "brain.Event:2" (24 bytes).
  REQUIRE(bytes.size() == 16 + 24 + 16 + 26);
  REQUIRE(bytes.substr(0, 12) == hex_bytes({0x18, 0, 0, 0, 0, 0, 0, 0, 0xA3, 0x7F, 0x4B, 0x22}));
  const std::string first = bytes.substr(12, 24);
  REQUIRE(first[0] == '\x09');
  REQUIRE(first.substr(9) == std::string("\x1A\x0D") + "brain.Event:2");
  double wall_time;
  std::memcpy(&wall_time, first.data() + 1, 8);
  REQUIRE(wall_time >= std::floor(before));
  REQUIRE(wall_time <= granite::unix_time_now());
  REQUIRE(bytes.substr(36, 4) == little_endian(granite::masked_crc32c(first.data(), first.size()), 4));
  // Record 2: the hand-built Event of the test above, framed.
  const std::string event = hex_bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x10, 0x07, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A, 0x04,
                                       'l', 'o', 's', 's', 0x15, 0x00, 0x00, 0xC0, 0x3F});
  REQUIRE(bytes.substr(40) == frame(event));
  REQUIRE(bytes.substr(40, 12) == hex_bytes({26, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x9B, 0xD8, 0x2D}));
  REQUIRE(bytes.substr(40 + 12 + 26) == little_endian(0x7448481Bu, 4));
}

TEST_CASE("tensorboard: scalars of several steps read back exactly", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_tb_roundtrip");
  const std::vector<std::pair<int64_t, granite::Scalars>> steps = {
      {0, {{"loss", 2.302585092994046}, {"lr", 0.0}, {"grad_norm", 12.75}}},
      {1, {{"loss", 2.1}, {"lr", 3e-4}, {"grad_norm", 1e-8}}},
      {300, {{"loss", -0.1}, {"train/tokens_per_s", 123456.789}}},
      {int64_t(1) << 40, {{"mfu", 0.4321}}},
  };
  std::string path;
  {
    granite::TensorBoardWriter writer(dir);
    path = writer.path();
    double wall_time = 1000.25;
    for (const auto& [step, scalars] : steps) writer.add_scalars(step, scalars, wall_time++);
    writer.add_scalars(5, {{"nan", std::nan("")}, {"inf", std::numeric_limits<double>::infinity()}}, 7.0);
  }
  std::string version;
  const auto read = granite::read_tensorboard_scalars(path, &version);
  REQUIRE(version == "brain.Event:2");
  std::vector<granite::ScalarEvent> expected;
  double wall_time = 1000.25;
  for (const auto& [step, scalars] : steps) {
    for (const auto& [tag, value] : scalars) expected.push_back({step, tag, as_float(value), wall_time});
    ++wall_time;
  }
  REQUIRE(read.size() == expected.size() + 2);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("scalar " << i << ": " << expected[i].tag);
    REQUIRE(read[i].step == expected[i].step);
    REQUIRE(read[i].tag == expected[i].tag);
    REQUIRE(read[i].value == expected[i].value);  // exact: the float32 that was stored
    REQUIRE(read[i].wall_time == expected[i].wall_time);
  }
  REQUIRE(read[expected.size()].tag == "nan");
  REQUIRE(std::isnan(read[expected.size()].value));
  REQUIRE(read[expected.size() + 1].value == std::numeric_limits<double>::infinity());

  // A file with only the file_version record has no scalars.
  granite::TensorBoardWriter empty(granite::test::scratch_dir("metrics_tb_empty"));
  version.clear();
  REQUIRE(granite::read_tensorboard_scalars(empty.path(), &version).empty());
  REQUIRE(version == "brain.Event:2");
}

TEST_CASE("tensorboard: two writers in one directory never share a file", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_tb_two");
  granite::TensorBoardWriter a(dir), b(dir);  // very likely the same second
  REQUIRE(a.path() != b.path());
  a.add_scalars(1, {{"x", 1.0}});
  b.add_scalars(2, {{"x", 2.0}});
  REQUIRE(granite::read_tensorboard_scalars(a.path()).at(0).step == 1);
  REQUIRE(granite::read_tensorboard_scalars(b.path()).at(0).step == 2);
  REQUIRE_THROWS_WITH(a.add_scalars(3, {{"", 1.0}}), Contains(a.path()) && Contains("empty scalar tag"));
}

TEST_CASE("tensorboard: corrupt or truncated files are errors naming the file and offset", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_tb_corrupt");
  std::string path;
  {
    granite::TensorBoardWriter writer(dir + "/tb");
    path = writer.path();
    writer.add_scalars(1, {{"loss", 3.0}}, 1.0);
    writer.add_scalars(2, {{"loss", 2.0}}, 2.0);
  }
  const std::string good = read_bytes(path);
  const size_t second = 16 + 24, third = second + 16 + 26;  // record offsets
  REQUIRE(good.size() == third + 16 + 26);
  REQUIRE(granite::read_tensorboard_scalars(path).size() == 2);
  const auto at = [](size_t offset) { return "byte offset " + std::to_string(offset); };

  SECTION("a flipped data byte") {
    std::string bad = good;
    bad[third + 12 + 23] ^= 0x01;  // inside the float of the third record
    write_bytes(path, bad);
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path),
                        Contains(path) && Contains(at(third)) && Contains("CRC of its 26 data bytes"));
  }
  SECTION("a flipped length byte") {
    std::string bad = good;
    bad[second] ^= 0x04;
    write_bytes(path, bad);
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path),
                        Contains(path) && Contains(at(second)) && Contains("length field"));
  }
  SECTION("a flipped data CRC byte") {
    std::string bad = good;
    bad[good.size() - 1] ^= 0x80;
    write_bytes(path, bad);
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path), Contains(path) && Contains(at(third)));
  }
  SECTION("the last record cut short") {
    write_bytes(path, good.substr(0, good.size() - 1));
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path),
                        Contains(path) && Contains("truncated record") && Contains(at(third)));
    write_bytes(path, good.substr(0, third + 5));  // inside the header
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path),
                        Contains(path) && Contains("truncated record") && Contains(at(third)));
  }
  SECTION("valid framing around a malformed Event") {
    write_bytes(path, good.substr(0, third) + frame(hex_bytes({0x2A, 0x7F, 0x00})));  // summary longer than the data
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(path),
                        Contains(path) && Contains(at(third)) && Contains("malformed protobuf"));
  }
  SECTION("a missing file") {
    REQUIRE_THROWS_WITH(granite::read_tensorboard_scalars(dir + "/nope"), Contains(dir + "/nope"));
  }
}

TEST_CASE("metrics.jsonl: one JSON object per line, NaN/Inf as null, appended on reopen", "[train][metrics]") {
  const auto path = granite::test::scratch_dir("metrics_jsonl") + "/sub/metrics.jsonl";  // parent created
  {
    granite::MetricsJsonl log(path);
    log.write(1, {{"loss", 2.5}, {"lr", 3e-4}, {"tokens", 4096}});
    log.write(2, {{"loss", std::nan("")}, {"grad_norm", std::numeric_limits<double>::infinity()},
                  {"x", -std::numeric_limits<double>::infinity()}});
  }
  auto lines = read_lines(path);
  REQUIRE(lines.size() == 2);
  REQUIRE(lines[0].rfind("{\"step\": 1, \"loss\": 2.5, \"lr\": ", 0) == 0);  // the caller's key order
  const auto first = granite::parse_json(lines[0], "line 1");
  REQUIRE(first.at("step") == 1);
  REQUIRE(first.at("loss").get<double>() == 2.5);
  REQUIRE(first.at("lr").get<double>() == 3e-4);  // round-trips exactly
  REQUIRE(first.at("tokens").get<double>() == 4096);
  const auto second = granite::parse_json(lines[1], "line 2");
  REQUIRE(second.at("step") == 2);
  REQUIRE(second.at("loss").is_null());
  REQUIRE(second.at("grad_norm").is_null());
  REQUIRE(second.at("x").is_null());

  {
    granite::MetricsJsonl log(path);  // a resumed run appends
    log.write(3, {{"loss", 1.25}});
    REQUIRE_THROWS_WITH(log.write(4, {{"step", 1.0}}), Contains(path) && Contains("reserved"));
    REQUIRE_THROWS_WITH(log.write(4, {{"a", 1.0}, {"a", 2.0}}), Contains(path) && Contains("\"a\" given twice"));
    REQUIRE_THROWS_WITH(log.write(4, {{"", 1.0}}), Contains(path) && Contains("empty metric name"));
  }
  lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  REQUIRE(granite::parse_json(lines[2], "line 3").at("loss").get<double>() == 1.25);
}

TEST_CASE("metrics.jsonl: an incomplete last line is cut on open", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_jsonl_repair");
  const auto path = dir + "/metrics.jsonl";
  {
    granite::MetricsJsonl log(path);
    log.write(1, {{"loss", 3.0}});
    log.write(2, {{"loss", 2.0}});
  }
  const std::string whole = read_bytes(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << "{\"step\": 3, \"lo";  // a crash mid-line
  }
  {
    granite::MetricsJsonl log(path);
    REQUIRE(read_bytes(path) == whole);
    log.write(3, {{"loss", 1.0}});
  }
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto line = granite::parse_json(lines[i], "line " + std::to_string(i + 1));
    REQUIRE(line.at("step") == int(i) + 1);
    REQUIRE(line.at("loss").get<double>() == 3.0 - double(i));
  }

  // A file with no complete line at all is emptied; a file of whole lines is left alone.
  const auto partial = dir + "/partial.jsonl";
  write_bytes(partial, "{\"step\": 1, \"loss\"");
  { granite::MetricsJsonl log(partial); }
  REQUIRE(read_bytes(partial).empty());
  const auto big = dir + "/big.jsonl";
  const std::string many_lines = std::string(100000, ' ') + "\n" + std::string(70000, 'x');  // search spans chunks
  write_bytes(big, many_lines);
  { granite::MetricsJsonl log(big); }
  REQUIRE(read_bytes(big) == std::string(100000, ' ') + "\n");
}

TEST_CASE("metrics log: metrics.jsonl and tensorboard/ in the output directory", "[train][metrics]") {
  const auto out = granite::test::scratch_dir("metrics_log") + "/run";
  {
    granite::MetricsLog log(out);
    log.log(10, {{"loss", 2.0}, {"lr", 1e-3}});
    log.log(20, {{"loss", 1.5}, {"lr", 5e-4}});
    REQUIRE(log.jsonl().path() == out + "/metrics.jsonl");
    REQUIRE(std::filesystem::path(log.tensorboard().path()).parent_path() == out + "/tensorboard");
  }
  const auto lines = read_lines(out + "/metrics.jsonl");
  REQUIRE(lines.size() == 2);
  REQUIRE(granite::parse_json(lines[1], "line 2").at("lr").get<double>() == 5e-4);
  const auto scalars = granite::read_tensorboard_scalars(only_event_file(out + "/tensorboard"));
  REQUIRE(scalars.size() == 4);
  REQUIRE(scalars[3].step == 20);
  REQUIRE(scalars[3].tag == "lr");
  REQUIRE(scalars[3].value == as_float(5e-4));
}

TEST_CASE("metrics log: paths that cannot be created or written are errors naming them", "[train][metrics]") {
  const auto dir = granite::test::scratch_dir("metrics_errors");
  const auto blocker = dir + "/blocker";
  write_bytes(blocker, "a regular file");
  REQUIRE_THROWS_WITH(granite::MetricsLog(blocker + "/run"), Contains(blocker + "/run"));
  REQUIRE_THROWS_WITH(granite::TensorBoardWriter(blocker + "/tb"), Contains(blocker + "/tb"));
  REQUIRE_THROWS_WITH(granite::MetricsJsonl(blocker + "/metrics.jsonl"), Contains(blocker));
  REQUIRE_THROWS_AS(granite::MetricsJsonl(blocker + "/metrics.jsonl"), granite::Error);
  REQUIRE_THROWS_WITH(granite::MetricsJsonl(dir), Contains(dir) && Contains("cannot open"));  // a directory
  if (std::filesystem::exists("/dev/full")) {  // every write fails with ENOSPC
    granite::MetricsJsonl full("/dev/full");
    REQUIRE_THROWS_WITH(full.write(1, {{"loss", 1.0}}), Contains("/dev/full") && Contains("write failed"));
  }
}
