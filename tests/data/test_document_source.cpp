// The document source: walk order, what is skipped, exact bytes, too-large and unreadable files, tar archives, JSONL.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "granite/core/check.h"
#include "granite/data/document_source.h"
#include "support/paths.h"

using granite::DocumentSource;
using granite::SourceDocument;
using granite::SourceOptions;

namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  REQUIRE(out.good());
}

void make_dir(const std::string& path) { REQUIRE(::mkdir(path.c_str(), 0755) == 0); }

void run(const std::string& command) { REQUIRE(std::system(command.c_str()) == 0); }

std::vector<SourceDocument> read_all(DocumentSource& source) {
  std::vector<SourceDocument> docs;
  SourceDocument doc;
  while (source.next(doc)) docs.push_back(doc);
  return docs;
}

std::vector<SourceDocument> read_all(const std::vector<std::string>& inputs, SourceOptions options = {}) {
  DocumentSource source(inputs, options);
  return read_all(source);
}

std::vector<std::string> paths_of(const std::vector<SourceDocument>& docs) {
  std::vector<std::string> paths;
  for (const auto& d : docs) paths.push_back(d.path);
  return paths;
}

// Deterministic text that compresses poorly, so a truncated .tar.gz really misses part of its stream.
std::string noise(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = char('!' + (x >> 24) % 90);
  }
  return s;
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_size;
}

}  // namespace

TEST_CASE("a directory is walked depth-first in byte-wise name order", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_order");
  // Byte order: 'B' (0x42) < '_' (0x5f) < 'a' < '~' (0x7e) < UTF-8 'é' (0xc3); a locale collation would differ.
  // The names of one directory are sorted, not whole paths: "a" (whose contents come next) sorts before "a-b.py"
  // although "a/" > "a-" as paths.
  for (const char* name : {"a.py", "B.py", "_c.py", "a-b.py", "b", "~x", "\xc3\xa9.py"}) {
    write_file(root + "/" + name, name);
  }
  make_dir(root + "/a");
  write_file(root + "/a/b.py", "ab");
  write_file(root + "/a/Z.txt", "az");
  make_dir(root + "/a/deep");
  write_file(root + "/a/deep/x", "");
  make_dir(root + "/empty_dir");

  const auto docs = read_all({root + "/"});  // a trailing '/' is removed from the reported paths
  const std::vector<std::string> expected = {
      root + "/B.py",   root + "/_c.py", root + "/a/Z.txt", root + "/a/b.py", root + "/a/deep/x", root + "/a-b.py",
      root + "/a.py",   root + "/b",     root + "/~x",      root + "/\xc3\xa9.py"};
  CHECK(paths_of(docs) == expected);
  CHECK(docs[0].text == "B.py");
  CHECK(docs[2].text == "az");
  CHECK(docs[4].text.empty());  // an empty file is still a document
  CHECK(docs[4].size == 0);
  CHECK(docs[4].error.empty());
  for (const auto& d : docs) CHECK(d.language.empty());

  // The same tree twice gives the same sequence; inputs are taken in the order given.
  const std::string single = granite::test::scratch_dir("source_order_other") + "/single.txt";
  write_file(single, "single");
  const auto twice = read_all({single, root, root + "/a"});
  REQUIRE(twice.size() == 1 + expected.size() + 3);
  CHECK(twice[0].path == single);
  CHECK(twice[0].text == "single");
  CHECK(twice[1].path == expected[0]);
  CHECK(twice.back().path == root + "/a/deep/x");
}

TEST_CASE("symbolic links, version-control directories and special files are skipped", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_skips");
  write_file(root + "/keep.py", "keep");
  write_file(root + "/.gitignore", "*.o");  // only the directories .git/.hg/.svn are skipped
  for (const char* vcs : {"/.git", "/.hg", "/.svn"}) {
    make_dir(root + vcs);
    write_file(root + vcs + "/config", "secret");
  }
  make_dir(root + "/sub");
  write_file(root + "/sub/inner.py", "inner");
  REQUIRE(::symlink("keep.py", (root + "/link.py").c_str()) == 0);
  REQUIRE(::symlink("sub", (root + "/linkdir").c_str()) == 0);
  REQUIRE(::symlink("/nonexistent", (root + "/dangling").c_str()) == 0);
  REQUIRE(::mkfifo((root + "/fifo").c_str(), 0644) == 0);  // opening it would block: it must not even be opened

  const auto docs = read_all({root});
  CHECK(paths_of(docs) == std::vector<std::string>{root + "/.gitignore", root + "/keep.py", root + "/sub/inner.py"});

  // A symbolic link named as an input is the user's choice and is followed.
  const auto direct = read_all({root + "/link.py", root + "/linkdir"});
  CHECK(paths_of(direct) == std::vector<std::string>{root + "/link.py", root + "/linkdir/inner.py"});
  CHECK(direct[0].text == "keep");
}

TEST_CASE("file bytes come back unchanged, NULs and invalid UTF-8 included", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_bytes");
  const std::string bytes("\xff\xfe\0abc\0\r\n\xc3(\x80 end", 15);
  write_file(root + "/bin.dat", bytes);
  std::string big = noise(3 << 20);  // several read() calls' worth
  write_file(root + "/big.txt", big);
  SourceOptions options;
  options.max_bytes = 4 << 20;
  const auto docs = read_all({root}, options);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].path == root + "/big.txt");
  CHECK(docs[0].text == big);
  CHECK(docs[1].text == bytes);
  CHECK(docs[1].size == 15);
}

TEST_CASE("files over max_bytes are reported too_large without being read", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_large");
  write_file(root + "/a_at_limit", std::string(10, 'x'));
  write_file(root + "/b_over_limit", std::string(11, 'y'));
  // 1 TiB, sparse: had the source tried to read it, it would have needed 1 TiB of memory.
  const std::string huge = root + "/c_huge";
  const int fd = ::open(huge.c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, int64_t(1) << 40) == 0);
  ::close(fd);

  SourceOptions options;
  options.max_bytes = 10;
  DocumentSource source({root}, options);
  const auto docs = read_all(source);
  REQUIRE(docs.size() == 3);
  CHECK_FALSE(docs[0].too_large);
  CHECK(docs[0].text == std::string(10, 'x'));
  CHECK(docs[1].too_large);
  CHECK(docs[1].size == 11);
  CHECK(docs[1].text.empty());
  CHECK(docs[2].too_large);
  CHECK(docs[2].size == int64_t(1) << 40);
  CHECK(docs[2].error.empty());
  // Too-large files count toward bytes_read: it measures input consumed, for MB/s.
  CHECK(source.bytes_read() == 10 + 11 + (int64_t(1) << 40));

  // Given directly, the same rule.
  const auto direct = read_all({huge});
  REQUIRE(direct.size() == 1);
  CHECK(direct[0].too_large);
}

TEST_CASE("a file that cannot be read is returned with its error, not thrown", "[data][source]") {
  // The tests run as root, for whom permission bits do not stop open(). /proc/self/mem is a regular file that opens
  // but whose read at offset 0 fails (EIO: address 0 is never mapped), and it reports size 0, so reading it also
  // exercises the read-to-the-end path for files of unknown size.
  struct stat st {};
  if (::stat("/proc/self/mem", &st) == 0) {
    const auto docs = read_all({"/proc/self/mem"});
    REQUIRE(docs.size() == 1);
    CHECK(docs[0].path == "/proc/self/mem");
    CHECK_FALSE(docs[0].error.empty());
    CHECK(docs[0].text.empty());
    CHECK_FALSE(docs[0].too_large);
  } else {
    WARN("/proc/self/mem is not available: the read-error case is not exercised");
  }
  // procfs files report size 0 yet have content: they are read to the end.
  const auto status = read_all({"/proc/self/status"});
  REQUIRE(status.size() == 1);
  CHECK(status[0].error.empty());
  CHECK(status[0].text.find("Name:") == 0);
  CHECK(status[0].size == int64_t(status[0].text.size()));

  if (::geteuid() != 0) {  // as an ordinary user, permission bits do apply
    const std::string root = granite::test::scratch_dir("source_unreadable");
    write_file(root + "/secret", "x");
    REQUIRE(::chmod((root + "/secret").c_str(), 0) == 0);
    const auto docs = read_all({root});
    REQUIRE(docs.size() == 1);
    CHECK(docs[0].error == "Permission denied");
  }
}

TEST_CASE("tar archives: regular members in archive order, named archive!member", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_tar");
  const std::string src = root + "/src";
  make_dir(src);
  make_dir(src + "/pkg");
  write_file(src + "/z.py", "zed");
  write_file(src + "/pkg/a.py", std::string("a\0b", 3));
  write_file(src + "/pkg/big.bin", std::string(100, 'B'));
  write_file(src + "/pkg/after.py", "after");
  REQUIRE(::symlink("z.py", (src + "/link.py").c_str()) == 0);
  // Archive order, not name order: z.py first. The directory member and the symbolic link are not documents.
  const std::string members = "z.py pkg link.py";
  const std::vector<std::string> member_paths = {"z.py", "pkg/a.py", "pkg/after.py", "pkg/big.bin"};
  run("tar -cf " + root + "/plain.tar -C " + src + " z.py pkg/a.py pkg/after.py pkg/big.bin pkg link.py");
  run("tar -czf " + root + "/snap.tar.gz -C " + src + " z.py pkg/a.py pkg/after.py pkg/big.bin");

  SourceOptions options;
  options.max_bytes = 50;  // big.bin (100 bytes) is too large; its data must be skipped cleanly
  for (const char* name : {"/plain.tar", "/snap.tar.gz"}) {
    const std::string archive = root + name;
    DocumentSource source({archive}, options);
    const auto docs = read_all(source);
    REQUIRE(docs.size() == member_paths.size());
    for (size_t i = 0; i < docs.size(); ++i) CHECK(docs[i].path == archive + "!" + member_paths[i]);
    CHECK(docs[0].text == "zed");
    CHECK(docs[1].text == std::string("a\0b", 3));
    CHECK(docs[2].text == "after");
    CHECK(docs[3].too_large);
    CHECK(docs[3].size == 100);
    CHECK(docs[3].text.empty());
    CHECK(source.bytes_read() > 0);
    CHECK(source.bytes_read() <= file_size(archive));  // compressed bytes, not member bytes
  }
}

// A one-member tar written with libarchive itself, so every compression is tested without depending on the
// machine's gzip/xz/bzip2/zstd programs (Ubuntu has no zstd by default).
void write_tar(const std::string& path, int (*add_filter)(struct archive*), const std::string& name,
               const std::string& text) {
  struct archive* a = archive_write_new();
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  REQUIRE(add_filter(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, la_int64_t(text.size()));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
  REQUIRE(archive_write_data(a, text.data(), text.size()) == la_ssize_t(text.size()));
  archive_entry_free(e);
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

TEST_CASE("every supported compression is read", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_tar_filters");
  const std::vector<std::pair<std::string, int (*)(struct archive*)>> kinds = {
      {".tar", archive_write_add_filter_none},      {".tgz", archive_write_add_filter_gzip},
      {".tar.gz", archive_write_add_filter_gzip},   {".tar.xz", archive_write_add_filter_xz},
      {".txz", archive_write_add_filter_xz},        {".tar.bz2", archive_write_add_filter_bzip2},
      {".tar.zst", archive_write_add_filter_zstd}};
  for (const auto& [ext, filter] : kinds) {
    const std::string archive = root + "/a" + ext;
    INFO(archive);
    write_tar(archive, filter, "f.py", "print(1)\n");
    const auto docs = read_all({archive});
    REQUIRE(docs.size() == 1);
    CHECK(docs[0].path == archive + "!f.py");
    CHECK(docs[0].text == "print(1)\n");
  }
  write_file(root + "/empty.tar", "");  // a zero-byte archive is empty, not corrupt
  CHECK(read_all({root + "/empty.tar"}).empty());
}

TEST_CASE("archives inside a walked directory are opened in place", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_tar_in_dir");
  const std::string src = root + "/src", snaps = root + "/snapshots";
  make_dir(src);
  make_dir(snaps);
  write_file(src + "/main.c", "int main;");
  write_file(src + "/util.c", "int util;");
  run("tar -czf " + snaps + "/repo1.tar.gz -C " + src + " main.c util.c");
  run("tar -cf " + snaps + "/repo2.tar -C " + src + " util.c");
  write_file(snaps + "/README", "readme");
  write_file(snaps + "/data.jsonl", "{\"text\": \"not split\"}\n");  // JSONL is special only when named directly

  const auto docs = read_all({snaps});
  CHECK(paths_of(docs) == std::vector<std::string>{snaps + "/README", snaps + "/data.jsonl",
                                                   snaps + "/repo1.tar.gz!main.c", snaps + "/repo1.tar.gz!util.c",
                                                   snaps + "/repo2.tar!util.c"});
  CHECK(docs[1].text == "{\"text\": \"not split\"}\n");
  CHECK(docs[1].language.empty());
  CHECK(docs[2].text == "int main;");
}

TEST_CASE("a corrupt or truncated archive is an error naming it", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_tar_corrupt");
  write_file(root + "/big.txt", noise(200000));
  const std::string archive = root + "/cut.tar.gz";
  run("tar -czf " + archive + " -C " + root + " big.txt");
  REQUIRE(::truncate(archive.c_str(), file_size(archive) / 2) == 0);
  {
    DocumentSource source({archive});
    SourceDocument doc;
    CHECK_THROWS_WITH(read_all(source), Catch::Contains(archive));
    CHECK_FALSE(source.next(doc));  // the broken archive was closed; nothing else to read
  }

  write_file(root + "/notatar.tar", noise(5000));
  CHECK_THROWS_WITH(read_all({root + "/notatar.tar"}), Catch::Contains(root + "/notatar.tar"));
}

TEST_CASE("JSONL: one document per non-blank line, language optional", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_jsonl");
  const std::string file = root + "/docs.jsonl";
  write_file(file,
             "{\"text\": \"hello\", \"id\": 7}\n"
             "\n"
             "{\"text\": \"def f(): pass\", \"language\": \"Python\"}\n"
             "   \t\r\n"
             "{\"language\": null, \"text\": \"nul\\u0000byte \\u00e9\"}\r\n"
             "{\"text\": \"\"}");  // last line without a newline
  DocumentSource source({file});
  const auto docs = read_all(source);
  CHECK(paths_of(docs) == std::vector<std::string>{file + ":1", file + ":3", file + ":5", file + ":6"});
  CHECK(docs[0].text == "hello");
  CHECK(docs[0].language == "text");
  CHECK(docs[1].text == "def f(): pass");
  CHECK(docs[1].language == "Python");
  CHECK(docs[2].text == std::string("nul\0byte \xc3\xa9", 11));
  CHECK(docs[2].size == 11);
  CHECK(docs[2].language == "text");
  CHECK(docs[3].text.empty());
  CHECK(source.bytes_read() == file_size(file));
}

TEST_CASE("JSONL: lines over max_bytes are too_large and skipped over", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_jsonl_long");
  const std::string file = root + "/long.jsonl";
  const std::string long_line = "{\"text\": \"" + std::string(3 << 20, 'x') + "\"}";  // longer than the read buffer
  write_file(file, "{\"text\": \"a\"}\n" + long_line + "\n{\"text\": \"b\"}\n");
  SourceOptions options;
  options.max_bytes = 1000;
  const auto docs = read_all({file}, options);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].text == "a");
  CHECK(docs[1].path == file + ":2");
  CHECK(docs[1].too_large);
  CHECK(docs[1].size == int64_t(long_line.size()));
  CHECK(docs[1].text.empty());
  CHECK(docs[2].path == file + ":3");
  CHECK(docs[2].text == "b");
}

TEST_CASE("JSONL: a malformed line is an error naming file:line", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_jsonl_bad");
  const std::string file = root + "/file.jsonl";
  write_file(file, "{\"text\": \"one\"}\n{\"text\": \"two\"}\n{\"text\": \"thr\n{\"text\": \"four\"}\n");
  DocumentSource source({file});
  SourceDocument doc;
  REQUIRE(source.next(doc));
  REQUIRE(source.next(doc));
  CHECK_THROWS_WITH(source.next(doc), Catch::Contains("file.jsonl:3") && Catch::Contains("invalid JSON"));

  auto error_of = [&](const std::string& line) {
    write_file(file, line + "\n");
    try {
      read_all({file});
    } catch (const granite::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("{\"content\": \"x\"}"), Catch::Contains("file.jsonl:1") && Catch::Contains("\"text\""));
  CHECK_THAT(error_of("{\"text\": 42}"), Catch::Contains("file.jsonl:1") && Catch::Contains("must be a string"));
  CHECK_THAT(error_of("{\"text\": \"x\", \"language\": 3}"), Catch::Contains("\"language\" must be a string"));
  CHECK_THAT(error_of("[\"text\"]"), Catch::Contains("expected a JSON object"));
  CHECK_THAT(error_of("{\"text\": \"\xff\"}"), Catch::Contains("file.jsonl:1"));  // JSON text must be UTF-8
}

TEST_CASE("a missing input is an error naming it, before any reading", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_missing");
  write_file(root + "/here.py", "x");
  const std::string missing = root + "/not_here";
  CHECK_THROWS_WITH((DocumentSource({root + "/here.py", missing})),
                    Catch::Contains("input does not exist: " + missing));
  CHECK_THROWS_WITH(DocumentSource({root + "/here.py/x"}), Catch::Contains(root + "/here.py/x"));
  SourceOptions negative;
  negative.max_bytes = -1;
  CHECK_THROWS_AS(DocumentSource({root}, negative), granite::Error);
}

TEST_CASE("bytes_read is the sum of the file sizes of a directory", "[data][source]") {
  const std::string root = granite::test::scratch_dir("source_bytes_read");
  make_dir(root + "/d");
  write_file(root + "/a", std::string(1000, 'a'));
  write_file(root + "/d/b", std::string(2345, 'b'));
  write_file(root + "/d/c", "");
  write_file(root + "/e", std::string(70000, 'e'));  // too large, still counted
  SourceOptions options;
  options.max_bytes = 65536;
  DocumentSource source({root}, options);
  CHECK(source.bytes_read() == 0);
  SourceDocument doc;
  REQUIRE(source.next(doc));
  CHECK(source.bytes_read() == 1000);  // running, document by document
  while (source.next(doc)) {
  }
  CHECK(source.bytes_read() == 1000 + 2345 + 0 + 70000);
}

TEST_CASE("deferred reads give the same documents as reading in the walk", "[data][source]") {
  // A tree with every kind of entry: plain files, an empty one, a too-large one, an archive (its members are never
  // deferred), a file that vanishes between the listing and the read, and (as a non-root user) an unreadable one.
  const std::string root = granite::test::scratch_dir("source_deferred");
  make_dir(root + "/src");
  make_dir(root + "/src/sub");
  write_file(root + "/src/a.py", "print('a')\n");
  write_file(root + "/src/empty.py", "");
  write_file(root + "/src/big.txt", std::string(200, 'x'));
  write_file(root + "/src/sub/b.c", std::string("int b;\0", 7));
  run("tar -czf " + root + "/src/sub/pack.tar.gz -C " + root + "/src a.py");
  write_file(root + "/src/sub/z.rs", "fn z() {}");
  if (::geteuid() != 0) {
    write_file(root + "/src/secret.py", "x");
    REQUIRE(::chmod((root + "/src/secret.py").c_str(), 0) == 0);
  }
  SourceOptions immediate;
  immediate.max_bytes = 100;
  SourceOptions deferred = immediate;
  deferred.defer_reads = true;
  const auto expected = read_all({root + "/src"}, immediate);
  auto docs = read_all({root + "/src"}, deferred);
  REQUIRE(paths_of(docs) == paths_of(expected));
  int deferred_count = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    INFO(docs[i].path);
    deferred_count += docs[i].deferred;
    const bool member = docs[i].path.find('!') != std::string::npos;  // archive members are read in the walk
    CHECK(docs[i].text.empty() != member);
    granite::read_deferred(docs[i], immediate.max_bytes);
    CHECK_FALSE(docs[i].deferred);
    CHECK(docs[i].text == expected[i].text);
    CHECK(docs[i].size == expected[i].size);
    CHECK(docs[i].too_large == expected[i].too_large);
    CHECK(docs[i].error == expected[i].error);
  }
  CHECK(deferred_count == (::geteuid() != 0 ? 5 : 4));  // a, empty, b, z (+ secret); not big, not the member

  // A file removed after the listing is an error document (counted by the caller), not a throw.
  DocumentSource source({root + "/src/sub/z.rs"}, deferred);
  SourceDocument doc;
  REQUIRE(source.next(doc));
  REQUIRE(doc.deferred);
  REQUIRE(::unlink((root + "/src/sub/z.rs").c_str()) == 0);
  granite::read_deferred(doc, immediate.max_bytes);
  CHECK(doc.error == "No such file or directory");
  CHECK(doc.text.empty());
}
