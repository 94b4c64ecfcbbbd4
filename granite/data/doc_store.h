#pragma once
// The staging area of a data-preparation run: the documents that passed the filters and exact deduplication,
// appended in input order during the scan and read back (memory-mapped) by near deduplication and tokenization, so
// neither holds the corpus in memory nor re-reads the inputs. Three files under one prefix:
//   <prefix>.txt    the texts, concatenated
//   <prefix>.paths  the source paths, concatenated
//   <prefix>.idx    one 32-byte little-endian record per document (StagedRecord)
// Staging files are scratch: the run's completion markers, not these files, say whether a stage finished.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "granite/core/mapped_file.h"

namespace granite {

struct StagedRecord {
  uint64_t text_offset;
  uint64_t text_length;
  uint64_t path_offset;
  uint32_t path_length;
  uint16_t language;  // index into the run's language list
  uint16_t flags;     // kStagedHasShingles
};
static_assert(sizeof(StagedRecord) == 32, "StagedRecord is a 32-byte on-disk record");
constexpr uint16_t kStagedHasShingles = 1;  // takes part in near deduplication

class DocStoreWriter {
 public:
  explicit DocStoreWriter(std::string prefix);  // truncates any previous staging files
  ~DocStoreWriter();
  DocStoreWriter(const DocStoreWriter&) = delete;
  DocStoreWriter& operator=(const DocStoreWriter&) = delete;

  int64_t add(std::string_view path, std::string_view text, uint16_t language, uint16_t flags);  // its index
  void finish();  // flush + fsync; errors (disk full, ...) name the file
  int64_t documents() const { return documents_; }

 private:
  struct File;
  std::string prefix_;
  std::unique_ptr<File> text_, paths_, index_;
  uint64_t text_bytes_ = 0, path_bytes_ = 0;
  int64_t documents_ = 0;
};

class DocStore {
 public:
  explicit DocStore(const std::string& prefix);  // validates sizes against the index
  ~DocStore();
  DocStore(const DocStore&) = delete;
  DocStore& operator=(const DocStore&) = delete;

  int64_t size() const { return documents_; }
  const StagedRecord& record(int64_t i) const { return records_[i]; }
  std::string_view text(int64_t i) const;
  std::string_view path(int64_t i) const;

 private:
  MappedFile text_, paths_, index_;
  const StagedRecord* records_ = nullptr;
  int64_t documents_ = 0;
};

}  // namespace granite
