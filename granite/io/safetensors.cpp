#include "granite/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>

#include "granite/core/atomic_file.h"
#include "granite/core/check.h"
#include "granite/core/format.h"
#include "granite/core/json.h"

namespace granite {

namespace {

// tensor.rs MAX_HEADER_SIZE: the reference reader refuses larger headers (HeaderTooLarge).
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr size_t kLengthPrefix = 8;  // u64 little-endian header length
constexpr const char* kMetadataKey = "__metadata__";

// One dtype name of the format. `rank` is the position in the reference `Dtype` enum (tensor.rs), which is declared
// in increasing alignment order; the reference writer sorts tensors by it, descending, then by name, so every
// tensor's data starts aligned to its element size (the header is padded to 8 bytes).
struct DtypeInfo {
  const char* name;
  bool supported;            // mapped to a LibTorch 1.13 scalar type
  torch::ScalarType type;    // Undefined when !supported
  uint64_t itemsize;         // bytes per element (0 for the sub-byte types we never size)
  int rank;
};

// Every name of the reference `Dtype` enum (safetensors main, tensor.rs), in its order.
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", true, torch::kBool, 1, 0},
    {"F4", false, torch::ScalarType::Undefined, 0, 1},
    {"F6_E2M3", false, torch::ScalarType::Undefined, 0, 2},
    {"F6_E3M2", false, torch::ScalarType::Undefined, 0, 3},
    {"U8", true, torch::kUInt8, 1, 4},
    {"I8", true, torch::kInt8, 1, 5},
    {"F8_E5M2", false, torch::ScalarType::Undefined, 1, 6},
    {"F8_E4M3", false, torch::ScalarType::Undefined, 1, 7},
    {"F8_E8M0", false, torch::ScalarType::Undefined, 1, 8},
    {"F8_E4M3FNUZ", false, torch::ScalarType::Undefined, 1, 9},
    {"F8_E5M2FNUZ", false, torch::ScalarType::Undefined, 1, 10},
    {"I16", true, torch::kInt16, 2, 11},
    {"U16", false, torch::ScalarType::Undefined, 2, 12},
    {"F16", true, torch::kFloat16, 2, 13},
    {"BF16", true, torch::kBFloat16, 2, 14},
    {"I32", true, torch::kInt32, 4, 15},
    {"U32", false, torch::ScalarType::Undefined, 4, 16},
    {"F32", true, torch::kFloat32, 4, 17},
    {"C64", false, torch::ScalarType::Undefined, 8, 18},
    {"F64", true, torch::kFloat64, 8, 19},
    {"I64", true, torch::kInt64, 8, 20},
    {"U64", false, torch::ScalarType::Undefined, 8, 21},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const DtypeInfo& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* find_dtype(torch::ScalarType type) {
  for (const DtypeInfo& d : kDtypes)
    if (d.supported && d.type == type) return &d;
  return nullptr;
}

std::string supported_names() {
  std::string out;
  for (const DtypeInfo& d : kDtypes)
    if (d.supported) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

std::string errno_text() { return std::strerror(errno); }

// The format stores everything little-endian (README "Format"); we read and write raw bytes, so the host must be too.
void require_little_endian_host(const std::string& path) {
  const uint16_t probe = 1;
  uint8_t first_byte = 0;
  std::memcpy(&first_byte, &probe, 1);
  GRANITE_CHECK(first_byte == 1, path, ": safetensors needs a little-endian host");
}

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string le_u64_bytes(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}


// ---------------------------------------------------------------------------------------------------------------
// Reading

// A read-only private mapping of a whole file. Owned by the caller (munmap).
struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
};

Mapping map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRANITE_CHECK(fd >= 0, path, ": cannot open for reading: ", errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    GRANITE_FAIL(path, ": cannot stat: ", why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    GRANITE_FAIL(path, ": not a regular file");
  }
  Mapping m;
  m.size = static_cast<size_t>(st.st_size);
  // HeaderTooSmall (tensor.rs): checked here because mmap of an empty file fails with a less useful message.
  if (m.size < kLengthPrefix) {
    ::close(fd);
    GRANITE_FAIL(path, ": file is ", m.size, " bytes, too short to hold the 8-byte header length (HeaderTooSmall)");
  }
  m.addr = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
  std::string why = errno_text();
  ::close(fd);  // the mapping stays valid without the descriptor
  GRANITE_CHECK(m.addr != MAP_FAILED, path, ": mmap of ", m.size, " bytes failed: ", why);
  return m;
}

// Parses the header text, rejecting duplicate keys in any object (nlohmann silently keeps the last one; the
// reference's serde rejects duplicate tensor fields, and a duplicate tensor name would hide one tensor's bytes).
Json parse_header_json(const std::string& path, const char* first, const char* last) {
  std::vector<std::set<std::string>> open_objects;  // keys seen, one set per enclosing object
  std::string current_tensor, duplicate, duplicate_in;
  auto on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (open_objects.size() == 1) current_tensor = key;
      if (!open_objects.back().insert(key).second && duplicate.empty()) {
        duplicate = key;
        duplicate_in = open_objects.size() == 1 ? "" : current_tensor;
      }
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(first, last, on_event);
  } catch (const Json::parse_error& e) {
    GRANITE_FAIL(path, ": header is not valid JSON (InvalidHeaderDeserialization) at byte ", e.byte, ": ", e.what());
  }
  if (!duplicate.empty()) {
    if (duplicate_in.empty()) GRANITE_FAIL(path, ": duplicate tensor name '", duplicate, "' in the header");
    const std::string owner = duplicate_in == kMetadataKey ? duplicate_in : "tensor '" + duplicate_in + "'";
    GRANITE_FAIL(path, ": ", owner, ": duplicate key '", duplicate, "' in the header");
  }
  GRANITE_CHECK(header.is_object(), path, ": header must be a JSON object, got ", json_preview(header));
  return header;
}

// `__metadata__`: string -> string only (README "Format"; tensor.rs HashMap<String, String>). null is accepted as
// absent, as serde's Option does.
std::map<std::string, std::string> parse_metadata(const std::string& path, const Json& value) {
  std::map<std::string, std::string> out;
  if (value.is_null()) return out;
  GRANITE_CHECK(value.is_object(), path, ": ", kMetadataKey, " must be an object of strings, got ",
                json_preview(value));
  for (auto it = value.begin(); it != value.end(); ++it) {
    GRANITE_CHECK(it->is_string(), path, ": ", kMetadataKey, " value for key '", it.key(), "' must be a string, got ",
                  json_preview(*it));
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

// A JSON integer >= 0 (shape entries and offsets are usize in tensor.rs), as uint64; `what` names it in errors.
uint64_t non_negative_int(const std::string& where, const char* what, const Json& v, const Json& whole) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  GRANITE_CHECK(v.is_number_integer(), where, what, " ", json_preview(whole), " must hold integers, got ",
                json_preview(v));
  GRANITE_FAIL(where, what, " ", json_preview(whole), " has a negative entry ", v.get<int64_t>());
}

// One "name": {"dtype", "shape", "data_offsets"} entry, checked on its own; coverage of the buffer is checked after.
SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const Json& value,
                             uint64_t buffer_size) {
  const std::string where = path + ": tensor '" + name + "': ";
  GRANITE_CHECK(value.is_object(), where, "expected an object with dtype, shape and data_offsets, got ",
                json_preview(value));
  for (auto it = value.begin(); it != value.end(); ++it) {
    GRANITE_CHECK(it.key() == "dtype" || it.key() == "shape" || it.key() == "data_offsets", where, "unknown key '",
                  it.key(), "' (expected dtype, shape, data_offsets)");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    GRANITE_CHECK(value.contains(key), where, "missing key '", key, "'");

  // dtype
  const Json& dtype_json = value.at("dtype");
  GRANITE_CHECK(dtype_json.is_string(), where, "dtype must be a string, got ", json_preview(dtype_json));
  const std::string dtype_name = dtype_json.get<std::string>();
  const DtypeInfo* dtype = find_dtype(dtype_name);
  GRANITE_CHECK(dtype != nullptr, where, "unknown dtype '", dtype_name, "'");
  GRANITE_CHECK(dtype->supported, where, "unsupported dtype '", dtype_name, "' (supported: ", supported_names(), ")");

  // shape: a list of non-negative ints; [] is a 0-rank tensor of one element, a 0 anywhere an empty tensor.
  const Json& shape_json = value.at("shape");
  GRANITE_CHECK(shape_json.is_array(), where, "shape must be a list of integers, got ", json_preview(shape_json));
  SafetensorsEntry entry;
  entry.dtype = dtype->type;
  uint64_t numel = 1;
  bool overflow = false;
  for (const Json& d : shape_json) {
    uint64_t dim = non_negative_int(where, "shape", d, shape_json);
    GRANITE_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, "shape ",
                  json_preview(shape_json), " has a dimension too large: ", dim);
    entry.shape.push_back(static_cast<int64_t>(dim));
    overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
  }
  uint64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, dtype->itemsize, &nbytes);
  // ValidationOverflow (tensor.rs)
  GRANITE_CHECK(!overflow, where, "shape ", list_string(entry.shape), " of ", dtype_name,
                " overflows 64 bits when sized (ValidationOverflow)");

  // data_offsets: [BEGIN, END), relative to the data buffer.
  const Json& offsets_json = value.at("data_offsets");
  GRANITE_CHECK(offsets_json.is_array() && offsets_json.size() == 2, where,
                "data_offsets must be a list of two integers [begin, end], got ", json_preview(offsets_json));
  entry.begin = non_negative_int(where, "data_offsets", offsets_json[0], offsets_json);
  entry.end = non_negative_int(where, "data_offsets", offsets_json[1], offsets_json);
  GRANITE_CHECK(entry.begin <= entry.end, where, "data_offsets [", entry.begin, ", ", entry.end,
                "] have begin > end (InvalidOffset)");
  // TensorInvalidInfo (tensor.rs): the byte range must be exactly numel * itemsize.
  GRANITE_CHECK(entry.end - entry.begin == nbytes, where, "data_offsets [", entry.begin, ", ", entry.end, "] hold ",
                entry.end - entry.begin, " bytes but shape ", list_string(entry.shape), " of ", dtype_name, " needs ",
                nbytes);
  GRANITE_CHECK(entry.end <= buffer_size, where, "data_offsets [", entry.begin, ", ", entry.end,
                "] run past the end of the data buffer, which is ", buffer_size,
                " bytes (file truncated, or offsets wrong)");
  return entry;
}

// README "Format": the offsets must cover the data buffer exactly, no holes and no overlaps; tensor.rs validate()
// sorts by offsets and requires each begin to equal the previous end (InvalidOffset) and the last end to be the end
// of the file (MetadataIncompleteBuffer).
void check_buffer_coverage(const std::string& path, const std::map<std::string, SafetensorsEntry>& entries,
                           uint64_t buffer_size) {
  std::vector<std::tuple<uint64_t, uint64_t, const std::string*>> ranges;  // begin, end, name
  ranges.reserve(entries.size());
  for (const auto& [name, e] : entries) ranges.emplace_back(e.begin, e.end, &name);
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), *std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), *std::get<2>(b));
  });
  uint64_t covered = 0;  // every byte before this belongs to exactly one tensor
  const std::string* previous = nullptr;
  for (const auto& [begin, end, name] : ranges) {
    GRANITE_CHECK(begin <= covered, path, ": bytes [", covered, ", ", begin,
                  ") of the data buffer belong to no tensor: a hole before tensor '", *name, "' (data_offsets [",
                  begin, ", ", end, "]) (InvalidOffset)");
    GRANITE_CHECK(begin == covered, path, ": tensor '", *name, "': data_offsets [", begin, ", ", end,
                  "] overlap tensor '", *previous, "' which ends at ", covered, " (InvalidOffset)");
    covered = end;
    previous = name;
  }
  GRANITE_CHECK(covered == buffer_size, path, ": ", buffer_size - covered,
                " trailing bytes after the last tensor: tensors cover ", covered, " of the ", buffer_size,
                " bytes of the data buffer (MetadataIncompleteBuffer)");
}

struct ParsedFile {
  std::map<std::string, SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t header_size = 0;
};

// Validates the whole layout of a mapped file (README "Format", tensor.rs read_metadata) before any tensor is used.
ParsedFile parse_file(const std::string& path, const uint8_t* bytes, uint64_t file_size) {
  // map_file() already refused files shorter than the length prefix.
  ParsedFile out;
  const uint64_t n = read_le_u64(bytes);
  GRANITE_CHECK(n <= kMaxHeaderSize, path, ": header length ", n, " exceeds the limit of ", kMaxHeaderSize,
                " bytes (HeaderTooLarge)");
  GRANITE_CHECK(n <= file_size - kLengthPrefix, path, ": header length ", n, " runs past the end of the file (",
                file_size, " bytes, ", file_size - kLengthPrefix, " after the length) (InvalidHeaderLength)");
  const char* header = reinterpret_cast<const char*>(bytes + kLengthPrefix);
  // InvalidHeaderStart: the header must begin with '{' (no leading whitespace, BOM, or non-object JSON).
  GRANITE_CHECK(n > 0, path, ": header is empty; it must be a JSON object starting with '{' (InvalidHeaderStart)");
  if (header[0] != '{') {
    std::ostringstream first;
    first << "0x" << std::hex << static_cast<int>(static_cast<unsigned char>(header[0]));
    GRANITE_FAIL(path, ": header must start with '{' but starts with byte ", first.str(), " (InvalidHeaderStart)");
  }
  const Json json = parse_header_json(path, header, header + n);
  out.header_size = n;

  const uint64_t buffer_size = file_size - kLengthPrefix - n;
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() == kMetadataKey) {
      out.metadata = parse_metadata(path, *it);
    } else {
      out.entries.emplace(it.key(), parse_entry(path, it.key(), *it, buffer_size));
    }
  }
  check_buffer_coverage(path, out.entries, buffer_size);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

struct PendingTensor {
  const std::string* name;
  const torch::Tensor* tensor;
  const DtypeInfo* dtype;
  uint64_t nbytes;
};

std::vector<PendingTensor> validate_for_save(const std::string& path,
                                             const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<PendingTensor> out;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    GRANITE_CHECK(name != kMetadataKey, path, ": '", kMetadataKey, "' is reserved and cannot name a tensor");
    GRANITE_CHECK(seen.insert(name).second, path, ": duplicate tensor name '", name, "'");
    GRANITE_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
    GRANITE_CHECK(t.layout() == torch::kStrided, path, ": tensor '", name, "' is not a dense (strided) tensor");
    const DtypeInfo* dtype = find_dtype(t.scalar_type());
    GRANITE_CHECK(dtype != nullptr, path, ": tensor '", name, "' has dtype ", t.scalar_type(),
                  ", which safetensors cannot store here (supported: ", supported_names(), ")");
    out.push_back({&name, &t, dtype, static_cast<uint64_t>(t.numel()) * dtype->itemsize});
  }
  // The reference writer's layout (tensor.rs prepare()): descending dtype alignment, then name.
  std::sort(out.begin(), out.end(), [](const PendingTensor& a, const PendingTensor& b) {
    if (a.dtype->rank != b.dtype->rank) return a.dtype->rank > b.dtype->rank;
    return *a.name < *b.name;
  });
  return out;
}

// Compact JSON in the reference writer's key order ("__metadata__" first, when non-empty; then tensors in layout
// order; fields dtype, shape, data_offsets), space-padded to a multiple of 8 so the buffer starts 8-byte aligned.
std::string build_header(const std::string& path, const std::vector<PendingTensor>& pending,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const PendingTensor& p : pending) {
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["dtype"] = p.dtype->name;
    info["shape"] = p.tensor->sizes().vec();
    info["data_offsets"] = {offset, offset + p.nbytes};
    header[*p.name] = std::move(info);
    offset += p.nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    GRANITE_FAIL(path, ": tensor names and metadata must be valid UTF-8: ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  require_little_endian_host(path);
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->self_ = file;
  file->path_ = path;
  Mapping m = map_file(path);
  file->map_ = m.addr;  // from here on the destructor unmaps, also when validation throws
  file->map_size_ = m.size;
  const auto* bytes = static_cast<const uint8_t*>(m.addr);
  ParsedFile parsed = parse_file(path, bytes, m.size);
  file->data_ = bytes + kLengthPrefix + parsed.header_size;
  file->entries_ = std::move(parsed.entries);
  file->metadata_ = std::move(parsed.metadata);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

std::vector<std::string> SafetensorsFile::keys() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& key) const {
  auto it = entries_.find(key);
  GRANITE_CHECK(it != entries_.end(), path_, ": no tensor named '", key, "' (the file has ", entries_.size(),
                " tensors)");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& key) const {
  const SafetensorsEntry& e = entry(key);
  const auto options = torch::TensorOptions().dtype(e.dtype).device(torch::kCPU);
  const uint8_t* bytes = data_ + e.begin;
  const uint64_t nbytes = e.end - e.begin;
  if (nbytes == 0) return torch::empty(e.shape, options);
  const auto itemsize = static_cast<uintptr_t>(c10::elementSize(e.dtype));
  if (reinterpret_cast<uintptr_t>(bytes) % itemsize != 0) {
    // A writer that did not pad the header left this tensor misaligned; typed loads from it would be undefined
    // behaviour, so hand out an aligned copy instead of a view.
    torch::Tensor copy = torch::empty(e.shape, options);
    std::memcpy(copy.data_ptr(), bytes, nbytes);
    return copy;
  }
  std::shared_ptr<const SafetensorsFile> keep_alive = self_.lock();
  GRANITE_CHECK(keep_alive != nullptr, path_, ": tensor '", key, "' requested from a file that is being destroyed");
  // The deleter owns a reference to this file, so the mapping outlives every tensor viewing it.
  return torch::from_blob(const_cast<uint8_t*>(bytes), e.shape, [keep_alive](void*) {}, options);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  require_little_endian_host(path);
  // Everything that can be rejected is rejected before the temporary file exists.
  const std::vector<PendingTensor> pending = validate_for_save(path, tensors);
  const std::string header = build_header(path, pending, metadata);

  AtomicFile out(path);
  const std::string length = le_u64_bytes(header.size());
  out.write(length.data(), length.size());
  out.write(header.data(), header.size());
  for (const PendingTensor& p : pending) {
    if (p.nbytes == 0) continue;
    // One tensor at a time on the host, so saving a GPU model needs no second full copy in host memory.
    const torch::Tensor host = p.tensor->detach().to(torch::kCPU).contiguous();
    out.write(host.data_ptr(), p.nbytes);
  }
  out.commit();
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path) {
  auto file = SafetensorsFile::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& key : file->keys()) out.emplace(key, file->tensor(key).clone());
  return out;
}

torch::ScalarType safetensors_dtype_from_string(const std::string& name) {
  const DtypeInfo* d = find_dtype(name);
  GRANITE_CHECK(d != nullptr, "unknown safetensors dtype '", name, "'");
  GRANITE_CHECK(d->supported, "unsupported safetensors dtype '", name, "' (supported: ", supported_names(), ")");
  return d->type;
}

std::string safetensors_dtype_to_string(torch::ScalarType dtype) {
  const DtypeInfo* d = find_dtype(dtype);
  GRANITE_CHECK(d != nullptr, "dtype ", dtype, " has no supported safetensors name (supported: ", supported_names(),
                ")");
  return d->name;
}

}  // namespace granite
