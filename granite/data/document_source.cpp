#include "granite/data/document_source.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "granite/core/check.h"
#include "granite/core/json.h"
#include "granite/core/list_directory.h"
#include "granite/core/strings.h"

// POSIX calls throughout rather than std::filesystem: explicit lstat/O_NOFOLLOW control over symbolic links,
// byte-wise names with no path re-encoding, and no exposure to the broken std::filesystem symbols some LibTorch
// builds export (see granite/core/remove_tree.h).

namespace granite {

namespace {

constexpr size_t kBlockBytes = size_t(1) << 20;  // libarchive's read block and the JSONL line buffer
constexpr size_t kGrowBytes = size_t(4) << 10;  // first buffer for a file of unknown size (doubles as it fills)

// Archives are recognised by name only (never by sniffing content), so a file's role never depends on its bytes.
bool is_archive_name(const std::string& path) {
  for (const char* suffix : {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst"}) {
    if (ends_with(path, suffix)) return true;
  }
  return false;
}

bool is_vcs_dir(const std::string& name) { return name == ".git" || name == ".hg" || name == ".svn"; }

// "dir" + "x" -> "dir/x"; the root "/" does not get a second slash.
std::string join(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Inputs are stat()ed, not lstat()ed: a symbolic link the user names on the command line is followed (only links met
// inside a walk are skipped).
struct stat stat_input(const std::string& input) {
  struct stat st {};
  if (::stat(input.c_str(), &st) != 0) {
    const int err = errno;
    GRANITE_CHECK(err != ENOENT && err != ENOTDIR, "input does not exist: ", input);
    GRANITE_FAIL("cannot access input ", input, ": ", std::strerror(err));
  }
  GRANITE_CHECK(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode), "input is neither a regular file nor a directory: ",
                input);
  return st;
}

// Closes a file descriptor on scope exit.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Fills `text` through read(buffer, capacity) -> bytes, 0 at the end, < 0 on failure. A known size (>= 0) is trusted:
// exactly that many bytes are asked for, saving the extra read() that would find the end. An unknown size (< 0) reads
// to the end, but never more than max_bytes + 1, so the caller can tell too_large. Returns false on a read failure
// (the read function keeps the cause).
template <typename ReadFn>
bool read_up_to(ReadFn read, int64_t size, int64_t max_bytes, std::string& text) {
  const size_t limit = size >= 0 ? size_t(size) : size_t(max_bytes) + 1;
  text.resize(size >= 0 ? limit : std::min(limit, kGrowBytes));
  size_t have = 0;
  while (have < limit) {
    if (have == text.size()) text.resize(std::min(limit, 2 * text.size()));
    const long n = read(&text[have], text.size() - have);
    if (n < 0) {
      text.clear();
      return false;
    }
    if (n == 0) break;  // shorter than its size said (truncated while we read): keep what is there
    have += size_t(n);
  }
  text.resize(have);
  return true;
}

// Reads one file whole into doc (doc.path already set) and returns the bytes it consumed (for bytes_read). A failure
// to open or read is recorded in doc.error, not thrown: the run counts the file and goes on. `in_walk` adds
// O_NOFOLLOW, so an entry swapped for a symbolic link after lstat() is still not followed.
int64_t read_file(const std::string& path, bool in_walk, int64_t max_bytes, SourceDocument& doc) {
  // O_NONBLOCK: no effect on a regular file, but a FIFO swapped in after the type check cannot hang the run.
  const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (in_walk ? O_NOFOLLOW : 0);
  FdGuard fd(::open(path.c_str(), flags));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    doc.error = std::strerror(errno);
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    doc.error = "not a regular file";
    return 0;
  }
  doc.size = st.st_size;
  if (st.st_size > max_bytes) {
    doc.too_large = true;
    return st.st_size;
  }
  int err = 0;
  auto read_fd = [&](char* buffer, size_t capacity) -> long {
    for (;;) {
      const ssize_t n = ::read(fd.get(), buffer, capacity);
      if (n >= 0 || errno != EINTR) {
        if (n < 0) err = errno;
        return long(n);
      }
    }
  };
  // Size 0 may be a lie (procfs and some FUSE files report 0 and have content): read those to the end.
  if (!read_up_to(read_fd, st.st_size > 0 ? st.st_size : -1, max_bytes, doc.text)) {
    doc.error = std::strerror(err);
    return 0;
  }
  doc.size = int64_t(doc.text.size());
  if (doc.size > max_bytes) {  // only possible for a file whose size was unknown
    doc.too_large = true;
    doc.text.clear();
  }
  return doc.size;
}

// The regular-file members of one tar archive (any compression libarchive can undo), in archive order.
class ArchiveReader {
 public:
  // Opens the file itself so that a file we may not read becomes an error document (like any unreadable file),
  // while everything libarchive reports afterwards (bad compression, not a tar, truncation) is thrown.
  ArchiveReader(std::string path, bool in_walk, int64_t max_bytes)
      : path_(std::move(path)),
        max_bytes_(max_bytes),
        fd_(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | (in_walk ? O_NOFOLLOW : 0))) {
    if (fd_.get() < 0) {
      open_error_ = std::strerror(errno);
      return;
    }
    a_.reset(archive_read_new());
    GRANITE_CHECK(a_ != nullptr, path_, ": cannot allocate an archive reader");
    archive_read_support_filter_all(a());
    archive_read_support_format_tar(a());    // ustar, GNU tar and pax alike
    archive_read_support_format_empty(a());  // a zero-byte .tar is an empty archive, not an error
    if (archive_read_open_fd(a(), fd_.get(), kBlockBytes) != ARCHIVE_OK) fail("cannot read archive");
  }

  bool next(SourceDocument& out) {
    if (done_) return false;
    if (a_ == nullptr) return report_open_error(out);
    for (;;) {
      archive_entry* entry = nullptr;
      const int rc = archive_read_next_header(a(), &entry);
      if (rc == ARCHIVE_EOF) {
        done_ = true;
        return false;
      }
      // ARCHIVE_WARN (e.g. a member name that does not convert to the locale) still yields a usable entry.
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) fail("corrupt archive");
      // Hard links carry no data of their own (their content is an earlier member's); libarchive skips the data
      // of every member we pass over when the next header is read.
      if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != nullptr) continue;
      read_member(entry, out);
      return true;
    }
  }

  // Compressed bytes read from the file so far (the last filter is the raw input).
  int64_t bytes_read() const { return a_ != nullptr ? int64_t(archive_filter_bytes(a(), -1)) : 0; }

 private:
  struct ArchiveFree {
    void operator()(archive* a) const { archive_read_free(a); }
  };

  archive* a() const { return a_.get(); }

  [[noreturn]] void fail(const char* what) const {
    const char* message = archive_error_string(a());
    GRANITE_FAIL(path_, ": ", what, ": ", message != nullptr ? message : "unknown libarchive error");
  }

  bool report_open_error(SourceDocument& out) {
    out = SourceDocument{};
    out.path = path_;
    out.error = open_error_;
    done_ = true;
    return true;
  }

  static std::string member_name(archive_entry* entry) {
    const char* name = archive_entry_pathname(entry);  // the raw bytes of the header (locale-independent for tar)
    if (name == nullptr) name = archive_entry_pathname_utf8(entry);
    return name != nullptr ? name : "";
  }

  void read_member(archive_entry* entry, SourceDocument& out) {
    out = SourceDocument{};
    out.path = path_ + "!" + member_name(entry);
    out.size = archive_entry_size(entry);
    if (out.size > max_bytes_) {
      out.too_large = true;
      if (archive_read_data_skip(a()) != ARCHIVE_OK) fail("corrupt archive");
      return;
    }
    auto read_data = [this](char* buffer, size_t capacity) { return long(archive_read_data(a(), buffer, capacity)); };
    const int64_t known = archive_entry_size_is_set(entry) ? out.size : -1;
    if (!read_up_to(read_data, known, max_bytes_, out.text)) fail("corrupt archive");
    out.size = int64_t(out.text.size());
    if (out.size > max_bytes_) {  // a member whose header gave no size
      out.too_large = true;
      out.text.clear();
    }
  }

  std::string path_;
  int64_t max_bytes_;
  FdGuard fd_;
  std::string open_error_;
  // Declared after fd_, so it is freed first: libarchive reads the descriptor but does not own it.
  std::unique_ptr<archive, ArchiveFree> a_;
  bool done_ = false;
};

// Lines of a file through one fixed buffer, so memory is bounded by the buffer plus the longest line kept, however
// long the file or its lines are.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd), buffer_(kBlockBytes) {}

  // The next line without its '\n': at most `keep` bytes land in `line`; `length` is the full length and `consumed`
  // adds the newline. False at the end of the file, or on a read error (then error() is the errno).
  bool next(std::string& line, size_t keep, size_t& length, size_t& consumed) {
    line.clear();
    length = consumed = 0;
    for (;;) {
      if (pos_ == end_ && !fill()) return consumed > 0 && error_ == 0;  // a last line without '\n' still counts
      const char* start = buffer_.data() + pos_;
      const char* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
      const size_t n = newline != nullptr ? size_t(newline - start) : end_ - pos_;
      if (line.size() < keep) line.append(start, std::min(n, keep - line.size()));
      length += n;
      consumed += n;
      pos_ += n;
      if (newline != nullptr) {
        ++pos_;
        ++consumed;
        return true;
      }
    }
  }
  int error() const { return error_; }

 private:
  bool fill() {
    for (;;) {
      const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) error_ = errno;
      pos_ = 0;
      end_ = n > 0 ? size_t(n) : 0;
      return n > 0;
    }
  }

  int fd_;
  std::vector<char> buffer_;
  size_t pos_ = 0, end_ = 0;
  int error_ = 0;
};

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// One JSONL line -> a document; every problem names "<file>:<line>".
void parse_jsonl_line(const std::string& line, const std::string& where, SourceDocument& out) {
  Json object = parse_json(line, where);
  GRANITE_CHECK(object.is_object(), where, ": expected a JSON object, got ", json_preview(object));
  auto text = object.find("text");
  GRANITE_CHECK(text != object.end(), where, ": missing the field \"text\"");
  GRANITE_CHECK(text->is_string(), where, ": \"text\" must be a string, got ", json_preview(*text));
  out.text = std::move(text->get_ref<std::string&>());
  out.size = int64_t(out.text.size());
  out.language = "text";
  auto language = object.find("language");
  if (language != object.end() && !language->is_null()) {  // null: exporters write it for "unknown"; use the default
    GRANITE_CHECK(language->is_string(), where, ": \"language\" must be a string, got ", json_preview(*language));
    out.language = language->get<std::string>();
  }
}

// Documents of one .jsonl file, a line at a time.
class JsonlReader {
 public:
  JsonlReader(std::string path, int64_t max_bytes)
      : path_(std::move(path)),
        max_bytes_(max_bytes),
        fd_(::open(path_.c_str(), O_RDONLY | O_CLOEXEC)),
        open_errno_(fd_.get() < 0 ? errno : 0),  // read right after open(), before anything else can touch errno
        lines_(fd_.get()) {}

  bool next(SourceDocument& out) {
    if (done_) return false;
    if (fd_.get() < 0) return finish_with_error(path_, open_errno_, out);
    for (;;) {
      size_t length = 0, consumed = 0;
      const bool got = lines_.next(line_, size_t(max_bytes_), length, consumed);
      bytes_read_ += int64_t(consumed);
      if (!got) {
        if (lines_.error() != 0) return finish_with_error(where(line_number_ + 1), lines_.error(), out);
        done_ = true;
        return false;
      }
      ++line_number_;
      out = SourceDocument{};
      if (int64_t(length) > max_bytes_) {  // not parsed: the size is the line's, the language the default
        out.path = where(line_number_);
        out.size = int64_t(length);
        out.language = "text";
        out.too_large = true;
        return true;
      }
      if (is_blank(line_)) continue;
      out.path = where(line_number_);
      parse_jsonl_line(line_, out.path, out);
      return true;
    }
  }

  int64_t bytes_read() const { return bytes_read_; }

 private:
  std::string where(int64_t line) const { return path_ + ":" + std::to_string(line); }

  bool finish_with_error(const std::string& path, int err, SourceDocument& out) {
    out = SourceDocument{};
    out.path = path;
    out.error = std::strerror(err);
    done_ = true;
    return true;
  }

  std::string path_;
  int64_t max_bytes_;
  FdGuard fd_;
  int open_errno_ = 0;
  LineReader lines_;
  std::string line_;  // reused: its capacity settles at the longest line kept (<= max_bytes)
  int64_t line_number_ = 0;
  int64_t bytes_read_ = 0;
  bool done_ = false;
};

// One directory being walked: its sorted names and the next one to visit.
struct Frame {
  std::string dir;
  std::vector<std::string> names;
  size_t next = 0;
};

}  // namespace

// The walk state only: the stack of directories being walked, the open archive, the open JSONL file. Nothing is kept
// about documents already returned, so memory does not grow with the number of files visited.
struct DocumentSource::State {
  std::vector<std::string> inputs;
  SourceOptions options;
  size_t next_input = 0;
  int64_t bytes_done = 0;  // files read, plus archives and JSONL files already closed
  std::vector<Frame> walk;
  std::unique_ptr<ArchiveReader> archive;
  std::unique_ptr<JsonlReader> jsonl;

  bool next(SourceDocument& out) {
    for (;;) {
      if (archive != nullptr) {
        if (next_member(out)) return true;
      } else if (jsonl != nullptr) {
        if (jsonl->next(out)) return true;
        bytes_done += jsonl->bytes_read();
        jsonl.reset();
      } else if (!walk.empty()) {
        if (step_walk(out)) return true;
      } else if (next_input < inputs.size()) {
        if (start_input(inputs[next_input++], out)) return true;
      } else {
        return false;
      }
    }
  }

  // An archive that throws is closed first, so a caller that catches the error can go on with the next input.
  bool next_member(SourceDocument& out) {
    try {
      if (archive->next(out)) return true;
    } catch (...) {
      close_archive();
      throw;
    }
    close_archive();
    return false;
  }

  void close_archive() {
    bytes_done += archive->bytes_read();
    archive.reset();
  }

  bool start_input(const std::string& input, SourceDocument& out) {
    const struct stat st = stat_input(input);  // again: the tree may have changed since the constructor
    if (S_ISDIR(st.st_mode)) {
      const std::string dir = without_trailing_slashes(input);
      walk.push_back(Frame{dir, list_directory(dir)});
      return false;
    }
    if (ends_with(input, ".jsonl")) {  // JSONL only when named directly; inside a directory it is an ordinary file
      jsonl = std::make_unique<JsonlReader>(input, options.max_bytes);
      return false;
    }
    return visit_file(input, st.st_size, false, out);
  }

  // Visits the next name of the innermost directory; true when that produced a document.
  bool step_walk(SourceDocument& out) {
    Frame& top = walk.back();
    if (top.next == top.names.size()) {
      walk.pop_back();
      return false;
    }
    const std::string name = std::move(top.names[top.next++]);  // visited names free their memory as we go
    const std::string path = join(top.dir, name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {  // vanished since the listing: report it like any unreadable file
      out = SourceDocument{};
      out.path = path;
      out.error = std::strerror(errno);
      return true;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!is_vcs_dir(name)) walk.push_back(Frame{path, list_directory(path)});  // invalidates `top`
      return false;
    }
    if (!S_ISREG(st.st_mode)) return false;  // symbolic links (never followed), FIFOs, sockets, devices
    return visit_file(path, st.st_size, true, out);
  }

  // A regular file: an archive is opened (its members come next); anything else is one document.
  bool visit_file(const std::string& path, int64_t size, bool in_walk, SourceDocument& out) {
    if (is_archive_name(path)) {
      archive = std::make_unique<ArchiveReader>(path, in_walk, options.max_bytes);
      return false;
    }
    out = SourceDocument{};
    out.path = path;
    if (size > options.max_bytes) {  // decided from the directory entry: the file is never opened
      out.size = size;
      out.too_large = true;
      bytes_done += size;
      return true;
    }
    if (options.defer_reads) {
      out.deferred = true;
      out.in_walk = in_walk;
      out.size = size;
      bytes_done += size;
      return true;
    }
    bytes_done += read_file(path, in_walk, options.max_bytes, out);
    return true;
  }

  int64_t bytes_read() const {
    return bytes_done + (archive != nullptr ? archive->bytes_read() : 0) + (jsonl != nullptr ? jsonl->bytes_read() : 0);
  }
};

void read_deferred(SourceDocument& doc, int64_t max_bytes) {
  if (!doc.deferred) return;
  doc.deferred = false;
  doc.size = 0;
  read_file(doc.path, doc.in_walk, max_bytes, doc);
}

DocumentSource::DocumentSource(std::vector<std::string> inputs, SourceOptions options)
    : state_(std::make_unique<State>()) {
  GRANITE_CHECK(options.max_bytes >= 0, "max_bytes must be >= 0, got ", options.max_bytes);
  for (const std::string& input : inputs) stat_input(input);  // fail before any work, naming the first bad input
  state_->inputs = std::move(inputs);
  state_->options = options;
}

DocumentSource::~DocumentSource() = default;

bool DocumentSource::next(SourceDocument& out) { return state_->next(out); }

int64_t DocumentSource::bytes_read() const { return state_->bytes_read(); }

}  // namespace granite
