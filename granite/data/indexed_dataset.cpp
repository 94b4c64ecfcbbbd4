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

bool fits(TokenDtype d, int64_t v) {
  switch (d) {
    case TokenDtype::UInt8: return v >= 0 && v <= 255;
    case TokenDtype::Int8: return v >= -128 && v <= 127;
    case TokenDtype::Int16: return v >= -32768 && v <= 32767;
    case TokenDtype::UInt16: return v >= 0 && v <= 65535;
    case TokenDtype::Int32: return v >= INT32_MIN && v <= INT32_MAX;
    case TokenDtype::Int64: return true;
  }
  return false;
}

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

void IndexedDatasetWriter::add_document(const std::vector<TokenId>& ids) {
  GRANITE_CHECK(!finished_, prefix_, ": add_document after finish");
  GRANITE_CHECK(ids.size() <= size_t(INT32_MAX), prefix_, ": document ", lengths_.size(), " has ", ids.size(),
                " tokens, more than an int32 sequence length holds");
  const int w = token_dtype_bytes(dtype_);
  std::string buf(ids.size() * size_t(w), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    GRANITE_CHECK(fits(dtype_, ids[i]), prefix_, ": document ", lengths_.size(), " token ", i, " has id ", ids[i],
                  ", which does not fit the shard's ", w, "-byte dtype (code ", int(dtype_), ")");
    const int64_t v = ids[i];
    std::memcpy(buf.data() + i * size_t(w), &v, size_t(w));  // low bytes of a little-endian int64
  }
  bin_->write(buf.data(), buf.size());
  pointers_.push_back(bytes_);
  lengths_.push_back(int32_t(ids.size()));
  bytes_ += int64_t(buf.size());
  tokens_ += int64_t(ids.size());
}

void IndexedDatasetWriter::finish() {
  GRANITE_CHECK(!finished_, prefix_, ": finish called twice");
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
  const int64_t len = length(i);
  GRANITE_CHECK(offset >= 0 && count >= 0 && offset + count <= len, prefix_, ": slice [", offset, ", ",
                offset + count, ") of sequence ", i, " (", len, " tokens)");
  const int w = token_dtype_bytes(dtype_);
  const auto* p = static_cast<const uint8_t*>(bin_->data()) + pointers_[size_t(i)] + offset * w;
  std::vector<TokenId> out(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k, p += w) {
    switch (dtype_) {
      case TokenDtype::UInt8: out[size_t(k)] = *p; break;
      case TokenDtype::Int8: out[size_t(k)] = int8_t(*p); break;
      case TokenDtype::UInt16: { uint16_t v; std::memcpy(&v, p, 2); out[size_t(k)] = v; break; }
      case TokenDtype::Int16: { int16_t v; std::memcpy(&v, p, 2); out[size_t(k)] = v; break; }
      case TokenDtype::Int32: { int32_t v; std::memcpy(&v, p, 4); out[size_t(k)] = v; break; }
      case TokenDtype::Int64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        GRANITE_CHECK(v >= INT32_MIN && v <= INT32_MAX, prefix_, ": token ", v, " does not fit a token id");
        out[size_t(k)] = TokenId(v);
        break;
      }
    }
  }
  return out;
}

int64_t IndexedDataset::total_tokens() const {
  int64_t n = 0;
  for (int32_t l : lengths_) n += l;
  return n;
}

}  // namespace granite
