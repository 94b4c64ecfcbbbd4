#include "granite/data/doc_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "granite/core/atomic_file.h"
#include "granite/core/check.h"

namespace granite {

// A buffered append-only file whose every failure (ENOSPC, EFBIG, EIO) is an error naming it.
struct DocStoreWriter::File {
  std::string path;
  std::FILE* f = nullptr;
  explicit File(std::string p) : path(std::move(p)) {
    f = std::fopen(path.c_str(), "wb");
    GRANITE_CHECK(f, "cannot create ", path, ": ", std::strerror(errno));
    std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  }
  ~File() {
    if (f) std::fclose(f);
  }
  void write(const void* data, size_t size) {
    if (size == 0) return;
    GRANITE_CHECK(std::fwrite(data, 1, size, f) == size, "cannot write ", path, ": ", std::strerror(errno));
    unflushed += int64_t(size);
    if (unflushed >= kKickBytes) {  // hand the buffer to the kernel and let write-back start (see WritebackKicker)
      GRANITE_CHECK(std::fflush(f) == 0, "cannot write ", path, ": ", std::strerror(errno));
      writeback.appended(fileno(f), unflushed);
      unflushed = 0;
    }
  }
  static constexpr int64_t kKickBytes = int64_t(8) << 20;
  int64_t unflushed = 0;
  WritebackKicker writeback;
  void finish() {
    GRANITE_CHECK(std::fflush(f) == 0, "cannot write ", path, ": ", std::strerror(errno));
    GRANITE_CHECK(::fsync(fileno(f)) == 0, "cannot sync ", path, ": ", std::strerror(errno));
    GRANITE_CHECK(std::fclose(f) == 0, "cannot close ", path, ": ", std::strerror(errno));
    f = nullptr;
  }
};

DocStoreWriter::DocStoreWriter(std::string prefix) : prefix_(std::move(prefix)) {
  text_ = std::make_unique<File>(prefix_ + ".txt");
  paths_ = std::make_unique<File>(prefix_ + ".paths");
  index_ = std::make_unique<File>(prefix_ + ".idx");
}

DocStoreWriter::~DocStoreWriter() = default;

int64_t DocStoreWriter::add(std::string_view path, std::string_view text, uint16_t language, uint16_t flags) {
  GRANITE_CHECK(path.size() <= UINT32_MAX, "path too long: ", path.substr(0, 200));
  StagedRecord r{text_bytes_, text.size(), path_bytes_, uint32_t(path.size()), language, flags};
  text_->write(text.data(), text.size());
  paths_->write(path.data(), path.size());
  index_->write(&r, sizeof r);
  text_bytes_ += text.size();
  path_bytes_ += path.size();
  return documents_++;
}

void DocStoreWriter::finish() {
  text_->finish();
  paths_->finish();
  index_->finish();
}

DocStore::DocStore(const std::string& prefix)
    : text_(prefix + ".txt"), paths_(prefix + ".paths"), index_(prefix + ".idx") {
  GRANITE_CHECK(index_.size() % sizeof(StagedRecord) == 0, prefix, ".idx: size ", index_.size(),
                " is not a multiple of ", sizeof(StagedRecord));
  documents_ = int64_t(index_.size() / sizeof(StagedRecord));
  records_ = static_cast<const StagedRecord*>(index_.data());
  for (int64_t i = 0; i < documents_; ++i) {
    const StagedRecord& r = records_[i];
    GRANITE_CHECK(r.text_offset + r.text_length <= text_.size() && r.path_offset + r.path_length <= paths_.size(),
                  prefix, ".idx: record ", i, " points past the end of the staged files");
  }
}

DocStore::~DocStore() = default;

std::string_view DocStore::text(int64_t i) const {
  const StagedRecord& r = records_[i];
  return {text_.chars() + r.text_offset, size_t(r.text_length)};
}

std::string_view DocStore::path(int64_t i) const {
  const StagedRecord& r = records_[i];
  return {paths_.chars() + r.path_offset, size_t(r.path_length)};
}

}  // namespace granite
