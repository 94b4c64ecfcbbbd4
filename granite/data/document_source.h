#pragma once
// The documents of a data-preparation run, read in one deterministic order from the inputs the user names:
//   a directory   walked recursively, depth first; the entries of each directory in byte-wise name order (so
//                 "a/x" comes before "a.py"); symbolic links inside it are skipped, never followed; version-control
//                 directories (.git, .hg, .svn) and special files (FIFOs, sockets, devices) are skipped
//   an archive    .tar, .tar.gz / .tgz, .tar.xz / .txz, .tar.bz2, .tar.zst (libarchive), by name, whether named
//                 directly or found in a walked directory; regular members in archive order (hard links skipped)
//   a .jsonl file natural-language text: one JSON object per line with a string field "text" (and optionally a
//                 string "language", default "text"; null counts as absent); other fields are ignored; blank lines
//                 are skipped. Only when named directly: a .jsonl inside a directory is an ordinary file.
// Inputs are taken in the order given; a symbolic link named as an input is followed.
// A regular file given directly is one document. Files are read whole, except those over max_bytes, which are
// reported (too_large) without reading them. A file that cannot be read is reported with its error, not thrown,
// so a run counts it and goes on; a missing input, an unreadable directory, a corrupt archive or a malformed JSONL
// line is an error naming the path (and line).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace granite {

struct SourceDocument {
  std::string path;      // "<input>/<relative path>", "<archive>!<member>" or "<file.jsonl>:<line>"
  std::string text;      // the bytes, unchanged (not validated as UTF-8 here)
  std::string language;  // set only for JSONL documents ("text" or the line's "language"); empty for files
  int64_t size = 0;      // bytes (also set when the text was not read; a too-large JSONL line gives its own length)
  bool too_large = false;
  std::string error;     // non-empty when the file could not be read (then text is empty)
  // With SourceOptions::defer_reads, a plain file's text is left for read_deferred() (any thread) to fill.
  bool deferred = false;
  bool in_walk = false;  // found by walking a directory (then symbolic links are not followed when reading)
};

struct SourceOptions {
  int64_t max_bytes = 1 << 20;  // larger files are reported too_large and not read
  // Plain files (not archive members, not JSONL lines) come back unread, `deferred`: the caller reads them with
  // read_deferred() on its worker threads, so one walking thread does not bound a many-core run.
  bool defer_reads = false;
};

// Reads a deferred document's file (see SourceOptions::defer_reads) with the same rules and error reporting as an
// immediate read; no-op for a document that is not deferred.
void read_deferred(SourceDocument& doc, int64_t max_bytes);

class DocumentSource {
 public:
  // Checks that every input exists (error naming the first that does not); reading starts with next().
  DocumentSource(std::vector<std::string> inputs, SourceOptions options = {});
  ~DocumentSource();
  DocumentSource(const DocumentSource&) = delete;
  DocumentSource& operator=(const DocumentSource&) = delete;

  // The next document in order; false when all inputs are exhausted.
  bool next(SourceDocument& out);
  // Bytes of input consumed so far (for progress: file sizes, JSONL bytes, compressed archive bytes read; a deferred
  // file counts with its size when listed).
  int64_t bytes_read() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace granite
