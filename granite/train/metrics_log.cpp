#include "granite/train/metrics_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/json.h"

namespace granite {

namespace {

std::string errno_text(int error) { return std::strerror(error); }

// Appends `bytes` whole. On failure, cuts the file back to `size` (best effort; a device such as /dev/full has no
// size to cut) and throws naming `path`. `size` tracks the end of the file.
void append_whole(int fd, const std::string& path, int64_t& size, const std::string& bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      if (::ftruncate(fd, size) != 0) {
        // Nothing more to do: the write error is the one to report.
      }
      GRANITE_FAIL(path, ": write failed: ", errno_text(error));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  size += static_cast<int64_t>(bytes.size());
}

// ---- CRC-32C, table-driven (one byte per step; records are a few hundred bytes) ----

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// ---- Minimal protobuf encoding (wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) ----

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t(field) << 3) | type); }
void put_little_endian(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_double(std::string& out, uint32_t field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  put_key(out, field, kFixed64);
  put_little_endian(out, bits, 8);
}
void put_float(std::string& out, uint32_t field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  put_key(out, field, kFixed32);
  put_little_endian(out, bits, 4);
}
void put_int64(std::string& out, uint32_t field, int64_t value) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(value));  // negative: 10 bytes, two's complement (protobuf's int64)
}
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event / Summary / Value field numbers (event.proto, summary.proto).
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2;
constexpr const char* kFileVersion = "brain.Event:2";

std::string frame_record(const std::string& data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_little_endian(out, data.size(), 8);
  put_little_endian(out, masked_crc32c(out.data(), 8), 4);
  out += data;
  put_little_endian(out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

// ---- Decoding, for read_tensorboard_scalars. Errors throw granite::Error; the caller adds file and offset. ----

class ProtoReader {
 public:
  ProtoReader(const unsigned char* begin, const unsigned char* end) : p_(begin), end_(end) {}
  bool done() const { return p_ == end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      GRANITE_CHECK(p_ < end_, "malformed protobuf: varint runs past the end");
      const unsigned char byte = *p_++;
      v |= uint64_t(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    GRANITE_FAIL("malformed protobuf: varint longer than 10 bytes");
  }
  uint64_t little_endian(int bytes) {
    GRANITE_CHECK(end_ - p_ >= bytes, "malformed protobuf: fixed", 8 * bytes, " runs past the end");
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(p_[i]) << (8 * i);
    p_ += bytes;
    return v;
  }
  ProtoReader sub_message() {
    const uint64_t size = varint();
    GRANITE_CHECK(size <= uint64_t(end_ - p_), "malformed protobuf: length ", size, " runs past the end");
    ProtoReader sub(p_, p_ + size);
    p_ += size;
    return sub;
  }
  std::string bytes() {
    ProtoReader sub = sub_message();
    return std::string(reinterpret_cast<const char*>(sub.p_), sub.end_ - sub.p_);
  }
  double fixed_double() {
    const uint64_t bits = little_endian(8);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  float fixed_float() {
    const uint32_t bits = static_cast<uint32_t>(little_endian(4));
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  void skip(uint32_t type) {
    switch (type) {
      case kVarint: varint(); break;
      case kFixed64: little_endian(8); break;
      case kLengthDelimited: sub_message(); break;
      case kFixed32: little_endian(4); break;
      default: GRANITE_FAIL("malformed protobuf: unsupported wire type ", type);
    }
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

void expect_type(const char* message, uint32_t field, uint32_t type, uint32_t expected) {
  GRANITE_CHECK(type == expected, "malformed ", message, ": field ", field, " has wire type ", type, ", expected ",
                expected);
}

void decode_value(ProtoReader in, int64_t step, double wall_time, std::vector<ScalarEvent>& out) {
  std::string tag;
  bool has_value = false;
  float value = 0;
  while (!in.done()) {
    const uint64_t key = in.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), type = key & 7;
    if (field == kValueTag) {
      expect_type("Summary.Value", field, type, kLengthDelimited);
      tag = in.bytes();
    } else if (field == kValueSimpleValue) {
      expect_type("Summary.Value", field, type, kFixed32);
      value = in.fixed_float();
      has_value = true;
    } else {
      in.skip(type);
    }
  }
  if (has_value) out.push_back({step, tag, double(value), wall_time});
}

void decode_event(ProtoReader in, std::vector<ScalarEvent>& out, std::string& file_version) {
  double wall_time = 0;
  int64_t step = 0;
  std::vector<ProtoReader> summaries;  // decoded once step and wall_time are known, whatever the field order
  while (!in.done()) {
    const uint64_t key = in.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), type = key & 7;
    if (field == kEventWallTime) {
      expect_type("Event", field, type, kFixed64);
      wall_time = in.fixed_double();
    } else if (field == kEventStep) {
      expect_type("Event", field, type, kVarint);
      step = static_cast<int64_t>(in.varint());
    } else if (field == kEventFileVersion) {
      expect_type("Event", field, type, kLengthDelimited);
      file_version = in.bytes();
    } else if (field == kEventSummary) {
      expect_type("Event", field, type, kLengthDelimited);
      summaries.push_back(in.sub_message());
    } else {
      in.skip(type);
    }
  }
  for (ProtoReader summary : summaries) {
    while (!summary.done()) {
      const uint64_t key = summary.varint();
      const uint32_t field = static_cast<uint32_t>(key >> 3), type = key & 7;
      if (field == kSummaryValue) {
        expect_type("Summary", field, type, kLengthDelimited);
        decode_value(summary.sub_message(), step, wall_time, out);
      } else {
        summary.skip(type);
      }
    }
  }
}

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
  std::string name(buffer);
  for (char& c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '_';
  }
  return name;
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  return Json(value).dump();
}

}  // namespace

// ---- Public helpers ----

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string encode_scalar_event(int64_t step, const Scalars& scalars, double wall_time) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string value_message;
    put_bytes(value_message, kValueTag, tag);
    put_float(value_message, kValueSimpleValue, static_cast<float>(value));
    put_bytes(summary, kSummaryValue, value_message);
  }
  std::string event;
  put_double(event, kEventWallTime, wall_time);
  put_int64(event, kEventStep, step);
  put_bytes(event, kEventSummary, summary);
  return event;
}

// ---- TensorBoardWriter ----

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  make_directories(dir);
  const double now = unix_time_now();
  const std::string base = (std::filesystem::path(dir) / "events.out.tfevents.").string() +
                           std::to_string(static_cast<long long>(std::floor(now))) + "." + host_name();
  for (int attempt = 0; fd_ < 0; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    const int error = errno;
    GRANITE_CHECK(fd_ >= 0 || (error == EEXIST && attempt < 1000), path_, ": cannot create event file: ",
                  errno_text(error));
  }
  std::string event;
  put_double(event, kEventWallTime, now);
  put_bytes(event, kEventFileVersion, kFileVersion);
  try {
    append_whole(fd_, path_, size_, frame_record(event));
  } catch (...) {
    ::close(fd_);
    ::unlink(path_.c_str());
    throw;
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::add_scalars(int64_t step, const Scalars& scalars, double wall_time) {
  if (scalars.empty()) return;
  for (const auto& scalar : scalars) GRANITE_CHECK(!scalar.first.empty(), path_, ": empty scalar tag at step ", step);
  append_whole(fd_, path_, size_, frame_record(encode_scalar_event(step, scalars, wall_time)));
}

// ---- MetricsJsonl ----

MetricsJsonl::MetricsJsonl(const std::string& path) : path_(path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GRANITE_CHECK(fd_ >= 0, path_, ": cannot open for appending: ", errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    GRANITE_FAIL(path_, ": cannot stat: ", errno_text(error));
  }
  if (!S_ISREG(st.st_mode)) return;  // a device or pipe: nothing to repair
  // Cut a last line that lacks its '\n' (left by a crash): keep everything up to and including the last '\n'.
  int64_t keep = st.st_size;
  char buffer[65536];
  while (keep > 0) {
    const int64_t chunk = std::min<int64_t>(keep, sizeof(buffer));
    const ssize_t n = ::pread(fd_, buffer, static_cast<size_t>(chunk), keep - chunk);
    if (n != chunk) {
      const int error = n < 0 ? errno : EIO;
      ::close(fd_);
      GRANITE_FAIL(path_, ": cannot read back the end of the file: ", errno_text(error));
    }
    const void* newline = ::memrchr(buffer, '\n', static_cast<size_t>(chunk));
    if (newline) {
      keep = keep - chunk + (static_cast<const char*>(newline) - buffer) + 1;
      break;
    }
    keep -= chunk;
  }
  if (keep != st.st_size && ::ftruncate(fd_, keep) != 0) {
    const int error = errno;
    ::close(fd_);
    GRANITE_FAIL(path_, ": cannot cut the incomplete last line: ", errno_text(error));
  }
  size_ = keep;
}

MetricsJsonl::~MetricsJsonl() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsJsonl::write(int64_t step, const Scalars& values) {
  std::set<std::string> seen;
  std::string line = "{\"step\": " + std::to_string(step);
  for (const auto& [name, value] : values) {
    GRANITE_CHECK(!name.empty(), path_, ": empty metric name at step ", step);
    GRANITE_CHECK(name != "step", path_, ": metric name \"step\" is reserved (step ", step, ")");
    GRANITE_CHECK(seen.insert(name).second, path_, ": metric \"", name, "\" given twice at step ", step);
    line += ", " + Json(name).dump(-1, ' ', false, Json::error_handler_t::replace) + ": " + json_number(value);
  }
  line += "}\n";
  append_whole(fd_, path_, size_, line);
}

// ---- MetricsLog ----

MetricsLog::MetricsLog(const std::string& output_dir)
    : jsonl_((std::filesystem::path(output_dir) / "metrics.jsonl").string()),
      tensorboard_((std::filesystem::path(output_dir) / "tensorboard").string()) {}

void MetricsLog::log(int64_t step, const Scalars& values) {
  jsonl_.write(step, values);
  tensorboard_.add_scalars(step, values);
}

// ---- Reading back ----

std::vector<ScalarEvent> read_tensorboard_scalars(const std::string& path, std::string* file_version) {
  std::ifstream in(path, std::ios::binary);
  GRANITE_CHECK(in.good(), path, ": cannot open for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  GRANITE_CHECK(!in.bad(), path, ": read error");
  const std::string bytes = buffer.str();
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t total = bytes.size();

  std::vector<ScalarEvent> scalars;
  std::string version;
  uint64_t offset = 0;
  while (offset < total) {
    const uint64_t left = total - offset;
    GRANITE_CHECK(left >= 12, path, ": truncated record at byte offset ", offset, ": the file ends inside its ",
                  "12-byte header (", left, " bytes left)");
    const unsigned char* record = data + offset;
    uint64_t length = 0;
    for (int i = 0; i < 8; ++i) length |= uint64_t(record[i]) << (8 * i);
    uint32_t stored = 0;
    for (int i = 0; i < 4; ++i) stored |= uint32_t(record[8 + i]) << (8 * i);
    GRANITE_CHECK(stored == masked_crc32c(record, 8), path, ": corrupt record at byte offset ", offset,
                  ": the CRC of its length field does not match");
    GRANITE_CHECK(left >= 16 && length <= left - 16, path, ": truncated record at byte offset ", offset,
                  ": its length ", length, " needs ", length, " + 16 bytes, the file has ", left, " left");
    stored = 0;
    for (int i = 0; i < 4; ++i) stored |= uint32_t(record[12 + length + i]) << (8 * i);
    GRANITE_CHECK(stored == masked_crc32c(record + 12, length), path, ": corrupt record at byte offset ", offset,
                  ": the CRC of its ", length, " data bytes does not match");
    try {
      decode_event(ProtoReader(record + 12, record + 12 + length), scalars, version);
    } catch (const Error& e) {
      GRANITE_FAIL(path, ": bad Event in the record at byte offset ", offset, ": ", e.what());
    }
    offset += 16 + length;
  }
  if (file_version) *file_version = version;
  return scalars;
}

}  // namespace granite
