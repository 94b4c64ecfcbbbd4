#include "granite/data/indexed_dataset.h"


#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "granite/core/check.h"

namespace granite {

namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr uint64_t kVersion = 1;

template <typename T>
void put(std::string& out, T v) {  // little-endian hosts only (checked by the callers' static_assert below)
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "indexed datasets are little-endian");

std::string bin_path(const std::string& prefix) { return prefix + ".bin"; }
std::string idx_path(const std::string& prefix) { return prefix + ".idx"; }

// Reads one little-endian value from the index, or fails naming the file and what was being read.
class IndexReader {
 public:
  IndexReader(std::string data, std::string path) : data_(std::move(data)), path_(std::move(path)) {}
  template <typename T>
  T read(const char* what) {
    GRANITE_CHECK(pos_ + sizeof(T) <= data_.size(), path_, ": truncated index while reading ", what, " at byte ",
                  pos_);
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  template <typename T>
  std::vector<T> read_array(uint64_t n, const char* what) {
    GRANITE_CHECK(n <= (data_.size() - pos_) / sizeof(T), path_, ": truncated index: ", what, " needs ", n, " x ",
                  sizeof(T), " bytes at byte ", pos_, " of ", data_.size());
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), data_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  size_t remaining() const { return data_.size() - pos_; }
  const std::string& data() const { return data_; }

 private:
  std::string data_, path_;
  size_t pos_ = 0;
};

}  // namespace

TokenDtype token_dtype_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65500 ? TokenDtype::UInt16 : TokenDtype::Int32;
}

int token_dtype_bytes(TokenDtype d) {
  switch (d) {
    case TokenDtype::UInt8:
    case TokenDtype::Int8: return 1;
    case TokenDtype::Int16:
    case TokenDtype::UInt16: return 2;
    case TokenDtype::Int32: return 4;
    case TokenDtype::Int64: return 8;
  }
  return 0;
}

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, TokenDtype dtype)
    : prefix_(std::move(prefix)), dtype_(dtype), bin_(std::make_unique<AtomicFile>(bin_path(prefix_))) {}

namespace {

constexpr size_t kWriteBuffer = size_t(4) << 20;

template <typename T>
bool pack_as(const std::vector<TokenId>& ids, int64_t lo, int64_t hi, std::string& out, size_t* bad) {
  // Range check first (one vectorisable pass), then the narrowing copy.
  TokenId min = 0, max = 0;
  for (TokenId id : ids) {
    min = std::min(min, id);
    max = std::max(max, id);
  }
  if (min < lo || max > hi) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < lo || ids[i] > hi) {
        *bad = i;
        return false;
      }
    }
  }
  out.resize(ids.size() * sizeof(T));
  T* p = reinterpret_cast<T*>(out.data());
  for (size_t i = 0; i < ids.size(); ++i) p[i] = T(ids[i]);
  return true;
}

}  // namespace

bool pack_tokens(const std::vector<TokenId>& ids, TokenDtype dtype, std::string& out, size_t* bad) {
  switch (dtype) {
    case TokenDtype::UInt8: return pack_as<uint8_t>(ids, 0, 255, out, bad);
    case TokenDtype::Int8: return pack_as<int8_t>(ids, -128, 127, out, bad);
    case TokenDtype::Int16: return pack_as<int16_t>(ids, -32768, 32767, out, bad);
    case TokenDtype::UInt16: return pack_as<uint16_t>(ids, 0, 65535, out, bad);
    case TokenDtype::Int32: return pack_as<int32_t>(ids, INT32_MIN, INT32_MAX, out, bad);
    case TokenDtype::Int64: return pack_as<int64_t>(ids, INT32_MIN, INT32_MAX, out, bad);
  }
  GRANITE_FAIL("unknown token dtype code ", int(dtype));
}

void IndexedDatasetWriter::add_document(const std::vector<TokenId>& ids) {
  std::string bytes;
  size_t bad = 0;
  GRANITE_CHECK(pack_tokens(ids, dtype_, bytes, &bad), prefix_, ": document ", lengths_.size(), " token ", bad,
                " has id ", ids[bad], ", which does not fit the shard's ", token_dtype_bytes(dtype_), "-byte dtype (code ",
                int(dtype_), ")");
  add_packed(bytes);
}

void IndexedDatasetWriter::add_packed(std::string_view bytes) {
  GRANITE_CHECK(!finished_, prefix_, ": add_document after finish");
  const size_t w = size_t(token_dtype_bytes(dtype_));
  GRANITE_CHECK(bytes.size() % w == 0, prefix_, ": a packed document of ", bytes.size(), " bytes is not a whole number of ",
                w, "-byte tokens");
  const size_t tokens = bytes.size() / w;
  GRANITE_CHECK(tokens <= size_t(INT32_MAX), prefix_, ": document ", lengths_.size(), " has ", tokens,
                " tokens, more than an int32 sequence length holds");
  buffer_.append(bytes);
  if (buffer_.size() >= kWriteBuffer) {
    bin_->write(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  pointers_.push_back(bytes_);
  lengths_.push_back(int32_t(tokens));
  bytes_ += int64_t(bytes.size());
  tokens_ += int64_t(tokens);
}

void IndexedDatasetWriter::finish() {
  GRANITE_CHECK(!finished_, prefix_, ": finish called twice");
  bin_->write(buffer_.data(), buffer_.size());
  buffer_.clear();
  bin_->commit();  // .bin first: an .idx never points at a missing or partial .bin
  std::string idx(kMagic, sizeof kMagic);
  put<uint64_t>(idx, kVersion);
  put<uint8_t>(idx, uint8_t(dtype_));
  put<uint64_t>(idx, lengths_.size());
  put<uint64_t>(idx, lengths_.size() + 1);  // document_indices: 0, 1, ..., n (one sequence per document)
  idx.append(reinterpret_cast<const char*>(lengths_.data()), lengths_.size() * sizeof(int32_t));
  idx.append(reinterpret_cast<const char*>(pointers_.data()), pointers_.size() * sizeof(int64_t));
  for (uint64_t d = 0; d <= lengths_.size(); ++d) put<int64_t>(idx, int64_t(d));
  write_file_atomic(idx_path(prefix_), idx);
  finished_ = true;
}

std::shared_ptr<IndexedDataset> IndexedDataset::open(const std::string& prefix) {
  const std::string ipath = idx_path(prefix), bpath = bin_path(prefix);
  std::ifstream in(ipath, std::ios::binary);
  GRANITE_CHECK(in.good(), ipath, ": cannot open index (a shard is complete only when its .idx exists)");
  std::stringstream text;
  text << in.rdbuf();
  IndexReader r(text.str(), ipath);
  GRANITE_CHECK(r.data().size() >= sizeof kMagic && std::memcmp(r.data().data(), kMagic, sizeof kMagic) == 0, ipath,
                ": not a Megatron indexed dataset index (bad magic)");
  r.read_array<char>(sizeof kMagic, "magic");
  const uint64_t version = r.read<uint64_t>("version");
  GRANITE_CHECK(version == kVersion, ipath, ": index version ", version, " is not supported (1)");
  const uint8_t code = r.read<uint8_t>("dtype");
  GRANITE_CHECK(code == 1 || code == 2 || code == 3 || code == 4 || code == 5 || code == 8, ipath, ": dtype code ",
                int(code), " is not a token dtype (1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16)");
  std::shared_ptr<IndexedDataset> ds(new IndexedDataset());
  ds->prefix_ = prefix;
  ds->dtype_ = TokenDtype(code);
  const uint64_t n_seq = r.read<uint64_t>("sequence_count");
  const uint64_t n_doc = r.read<uint64_t>("document_count");
  ds->lengths_ = r.read_array<int32_t>(n_seq, "sequence_lengths");
  ds->pointers_ = r.read_array<int64_t>(n_seq, "sequence_pointers");
  ds->document_indices_ = r.read_array<int64_t>(n_doc, "document_indices");
  // Megatron may append sequence_modes (int8 per sequence, multimodal only).
  GRANITE_CHECK(r.remaining() == 0 || r.remaining() == n_seq, ipath, ": ", r.remaining(),
                " unexpected trailing bytes");

  ds->bin_ = std::make_unique<MappedFile>(bpath);
  const int64_t w = token_dtype_bytes(ds->dtype_);
  for (uint64_t i = 0; i < n_seq; ++i) {
    const int64_t len = ds->lengths_[i], ptr = ds->pointers_[i];
    GRANITE_CHECK(len >= 0 && ptr >= 0 && uint64_t(ptr) + uint64_t(len) * uint64_t(w) <= ds->bin_->size(), ipath,
                  ": sequence ", i, " (", len, " tokens at byte ", ptr, ") lies outside ", bpath, " (",
                  ds->bin_->size(), " bytes)");
  }
  for (uint64_t d = 0; d < n_doc; ++d) {
    const int64_t v = ds->document_indices_[d];
    GRANITE_CHECK(v >= 0 && uint64_t(v) <= n_seq && (d == 0 || v >= ds->document_indices_[d - 1]), ipath,
                  ": document_indices[", d, "] = ", v, " is not a non-decreasing sequence index <= ", n_seq);
  }
  return ds;
}

IndexedDataset::~IndexedDataset() = default;

int64_t IndexedDataset::length(int64_t i) const {
  GRANITE_CHECK(i >= 0 && i < size(), prefix_, ": sequence ", i, " out of range [0, ", size(), ")");
  return lengths_[size_t(i)];
}

std::vector<TokenId> IndexedDataset::get(int64_t i) const { return get(i, 0, length(i)); }

std::vector<TokenId> IndexedDataset::get(int64_t i, int64_t offset, int64_t count) const {
  std::vector<TokenId> out;
  append(i, offset, count, out);
  return out;
}

namespace {
template <typename T>
void widen(const uint8_t* p, int64_t count, TokenId* out) {
  for (int64_t k = 0; k < count; ++k, p += sizeof(T)) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    out[k] = TokenId(v);
  }
}
}  // namespace

void IndexedDataset::append(int64_t i, int64_t offset, int64_t count, std::vector<TokenId>& out) const {
  GRANITE_CHECK(i >= 0 && i < size(), prefix_, ": sequence ", i, " out of range [0, ", size(), ")");
  const int64_t len = length(i);
  GRANITE_CHECK(offset >= 0 && count >= 0 && offset + count <= len, prefix_, ": slice [", offset, ", ",
                offset + count, ") of sequence ", i, " (", len, " tokens)");
  const int w = token_dtype_bytes(dtype_);
  const auto* p = static_cast<const uint8_t*>(bin_->data()) + pointers_[size_t(i)] + offset * w;
  const size_t at = out.size();
  out.resize(at + size_t(count));
  TokenId* dst = out.data() + at;
  switch (dtype_) {
    case TokenDtype::UInt8: widen<uint8_t>(p, count, dst); break;
    case TokenDtype::Int8: widen<int8_t>(p, count, dst); break;
    case TokenDtype::UInt16: widen<uint16_t>(p, count, dst); break;
    case TokenDtype::Int16: widen<int16_t>(p, count, dst); break;
    case TokenDtype::Int32: widen<int32_t>(p, count, dst); break;
    case TokenDtype::Int64:
      for (int64_t k = 0; k < count; ++k, p += 8) {
        int64_t v;
        std::memcpy(&v, p, 8);
        GRANITE_CHECK(v >= INT32_MIN && v <= INT32_MAX, prefix_, ": token ", v, " does not fit a token id");
        dst[k] = TokenId(v);
      }
      break;
  }
}

int64_t IndexedDataset::total_tokens() const {
  int64_t n = 0;
  for (int32_t l : lengths_) n += l;
  return n;
}

}  // namespace granite
