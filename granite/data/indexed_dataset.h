#pragma once
// Token shards in Megatron-LM's indexed dataset layout (megatron/core/datasets/indexed_dataset.py), so others' tools
// read ours and ours read theirs. A shard is two files:
//   <prefix>.bin  the token ids of every sequence, concatenated, in the index's dtype (little-endian)
//   <prefix>.idx  magic "MMIDIDX\0\0" (9 bytes) | u64 version = 1 | u8 dtype code | u64 sequence_count |
//                 u64 document_count | i32[sequence_count] sequence_lengths (tokens) |
//                 i64[sequence_count] sequence_pointers (byte offsets into .bin) | i64[document_count] document_indices
// dtype codes: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64, 7 float32, 8 uint16. Megatron picks uint16 for
// vocabularies under 65500 tokens (Granite's 49152), int32 otherwise. document_indices starts at 0 and gets the
// running sequence count appended at every document end; here one sequence is one document.
// The writer puts .bin in place first and .idx last (both atomically), so a shard whose .idx exists is complete.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "granite/core/atomic_file.h"
#include "granite/core/mapped_file.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

enum class TokenDtype : uint8_t { UInt8 = 1, Int8 = 2, Int16 = 3, Int32 = 4, Int64 = 5, UInt16 = 8 };

// uint16 when every id fits (vocab_size <= 65500, Megatron's rule), else int32.
TokenDtype token_dtype_for_vocab(int64_t vocab_size);
int token_dtype_bytes(TokenDtype dtype);

// The bytes of `ids` in `dtype` (little-endian), as a shard stores them; false (out untouched) if an id does not fit,
// then *bad is its position. Thread-safe, so workers can pack while one thread appends (add_packed).
bool pack_tokens(const std::vector<TokenId>& ids, TokenDtype dtype, std::string& out, size_t* bad);

class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(std::string prefix, TokenDtype dtype);
  // Appends one document (one sequence). Ids must fit the dtype (error naming the id and the document).
  void add_document(const std::vector<TokenId>& ids);
  // Appends one document already packed by pack_tokens with this writer's dtype.
  void add_packed(std::string_view bytes);
  // Writes the index and puts both files in place; nothing is visible at <prefix>.* before this.
  void finish();
  int64_t documents() const { return int64_t(lengths_.size()); }
  int64_t tokens() const { return tokens_; }

 private:
  std::string prefix_;
  TokenDtype dtype_;
  std::unique_ptr<AtomicFile> bin_;
  std::string buffer_;  // .bin bytes not yet written: one write per few MB, not per document
  std::vector<int32_t> lengths_;
  std::vector<int64_t> pointers_;
  int64_t bytes_ = 0, tokens_ = 0;
  bool finished_ = false;
};

// Memory-mapped reader; validates the index against both files before use.
class IndexedDataset {
 public:
  static std::shared_ptr<IndexedDataset> open(const std::string& prefix);
  ~IndexedDataset();
  IndexedDataset(const IndexedDataset&) = delete;
  IndexedDataset& operator=(const IndexedDataset&) = delete;

  int64_t size() const { return int64_t(lengths_.size()); }  // sequences
  int64_t length(int64_t i) const;                              // tokens in sequence i
  std::vector<TokenId> get(int64_t i) const;                    // sequence i
  std::vector<TokenId> get(int64_t i, int64_t offset, int64_t count) const;  // a slice of it
  void append(int64_t i, int64_t offset, int64_t count, std::vector<TokenId>& out) const;  // the slice, appended
  const std::vector<int64_t>& document_indices() const { return document_indices_; }
  TokenDtype dtype() const { return dtype_; }
  int64_t total_tokens() const;

 private:
  IndexedDataset() = default;
  std::string prefix_;
  TokenDtype dtype_ = TokenDtype::UInt16;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> pointers_, document_indices_;
  std::unique_ptr<MappedFile> bin_;
};

}  // namespace granite
