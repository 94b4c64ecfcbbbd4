// The language table: the built-in 116 languages of the Granite Code paper, identification by base name and
// extension, and a loud error for every malformed table.
#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "granite/core/check.h"
#include "granite/data/language_table.h"
#include "support/paths.h"

using granite::LanguageTable;

namespace {

// The name of the language `path` is identified as, or "" for none.
std::string language_of(const LanguageTable& table, std::string_view path) {
  const granite::Language* lang = table.identify(path);
  return lang == nullptr ? "" : lang->name;
}

std::string builtin_language_of(std::string_view path) { return language_of(LanguageTable::builtin(), path); }

LanguageTable table_from(const std::string& text) {
  return LanguageTable::from_json(granite::parse_json(text, "test.json"), "test.json");
}

}  // namespace

TEST_CASE("the built-in table holds the paper's 116 languages", "[data][languages]") {
  // Appendix A of the Granite Code paper (115 names), plus Objective-C (see configs/data/README.md).
  const char* paper[] = {
      "ABAP", "Ada", "Agda", "Alloy", "ANTLR", "AppleScript", "Arduino", "ASP", "Assembly", "Augeas", "Awk",
      "Batchfile", "Bison", "Bluespec", "C", "C-sharp", "C++", "Clojure", "CMake", "COBOL", "CoffeeScript",
      "Common-Lisp", "CSS", "Cucumber", "Cuda", "Cython", "Dart", "Dockerfile", "Eagle", "Elixir", "Elm",
      "Emacs-Lisp", "Erlang", "F-sharp", "FORTRAN", "GLSL", "GO", "Gradle", "GraphQL", "Groovy", "Haskell", "Haxe",
      "HCL", "HTML", "Idris", "Isabelle", "Java", "Java-Server-Pages", "JavaScript", "JSON", "JSON5", "JSONiq",
      "JSONLD", "JSX", "Julia", "Jupyter", "Kotlin", "Lean", "Literate-Agda", "Literate-CoffeeScript",
      "Literate-Haskell", "Lua", "Makefile", "Maple", "Markdown", "Mathematica", "Matlab", "Objective-C",
      "Objective-C++", "OCaml", "OpenCL", "Pascal", "Perl", "PHP", "PowerShell", "Prolog", "Protocol-Buffer",
      "Python", "Python-traceback", "R", "Racket", "RDoc", "Restructuredtext", "RHTML", "RMarkdown", "Ruby", "Rust",
      "SAS", "Scala", "Scheme", "Shell", "Smalltalk", "Solidity", "SPARQL", "SQL", "Stan", "Standard-ML", "Stata",
      "Swift", "SystemVerilog", "Tcl", "Tcsh", "Tex", "Thrift", "Twig", "TypeScript", "Verilog", "VHDL",
      "Visual-Basic", "Vue", "Web-IDL", "XML", "XSLT", "Yacc", "YAML", "Zig"};
  const LanguageTable& table = LanguageTable::builtin();
  CHECK(std::size(paper) == 116);
  CHECK(table.size() == 116);
  for (const char* name : paper) {
    INFO(name);
    CHECK(table.find(name) != nullptr);
  }
  CHECK(table.find("python") == nullptr);  // names are exact
  CHECK(&LanguageTable::builtin() == &table);  // parsed once
}

TEST_CASE("identification of real paths by base name and extension", "[data][languages]") {
  CHECK(builtin_language_of("Lib/json/__init__.py") == "Python");
  CHECK(builtin_language_of("include/stdio.h") == "C");
  CHECK(builtin_language_of("x.HPP") == "C++");  // extensions match case-insensitively
  CHECK(builtin_language_of("R/plot.R") == "R");
  CHECK(builtin_language_of("Dockerfile") == "Dockerfile");
  CHECK(builtin_language_of("docker/app.Dockerfile") == "Dockerfile");
  CHECK(builtin_language_of("CMakeLists.txt") == "CMake");
  CHECK(builtin_language_of("src/Makefile") == "Makefile");
  CHECK(builtin_language_of("a.d.ts") == "TypeScript");
  CHECK(builtin_language_of("archive.tar.gz!pkg/x.rs") == "Rust");  // a member inside an archive
  CHECK(builtin_language_of("notebooks/eda.ipynb") == "Jupyter");
  CHECK(builtin_language_of(".eslintrc.json") == "JSON");  // the leading dot is not an extension; ".json" is
  // none
  CHECK(builtin_language_of(".bashrc") == "");  // a hidden file without another dot has no extension
  CHECK(builtin_language_of("README") == "");
  CHECK(builtin_language_of("notes.txt") == "");
  CHECK(builtin_language_of("src/") == "");
  CHECK(builtin_language_of("") == "");
  CHECK(builtin_language_of("trailing.") == "");
  CHECK(builtin_language_of("makefile.bak") == "");  // file names are exact, not prefixes
  CHECK(builtin_language_of("MAKEFILE") == "");      // and case-sensitive
}

TEST_CASE("the longest claimed extension wins", "[data][languages]") {
  CHECK(builtin_language_of("build.gradle.kts") == "Gradle");
  CHECK(builtin_language_of("script.kts") == "Kotlin");
  CHECK(builtin_language_of("doc/intro.coffee.md") == "Literate-CoffeeScript");
  CHECK(builtin_language_of("Data.List.lagda.md") == "Literate-Agda");
  CHECK(builtin_language_of("doc/intro.md") == "Markdown");
  CHECK(builtin_language_of("a.b.c.PY") == "Python");  // only the last suffix is claimed

  const LanguageTable table = table_from(R"({"languages": [
      {"name": "Decl", "extensions": [".d.ts"]},
      {"name": "TS", "extensions": [".ts"]},
      {"name": "Tarball", "extensions": [".tar.gz"]}]})");
  CHECK(language_of(table, "lib/index.d.ts") == "Decl");
  CHECK(language_of(table, "lib/index.D.TS") == "Decl");
  CHECK(language_of(table, "lib/index.ts") == "TS");
  CHECK(language_of(table, "x.tar.gz") == "Tarball");
  CHECK(language_of(table, "x.gz") == "");
  CHECK(language_of(table, ".tar.gz") == "");  // hidden file named ".tar" with extension ".gz"
  CHECK(language_of(table, "a..ts") == "TS");
}

TEST_CASE("every extension and file name in the built-in table has one owner and is lower-case", "[data][languages]") {
  const LanguageTable& table = LanguageTable::builtin();
  for (const granite::Language& lang : table.languages()) {
    for (const std::string& ext : lang.extensions) {
      INFO(lang.name << " " << ext);
      std::string lower = ext;
      for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
      CHECK(ext == lower);
      CHECK(language_of(table, "file" + ext) == lang.name);
    }
    for (const std::string& name : lang.filenames) {
      INFO(lang.name << " " << name);
      CHECK(language_of(table, "dir/" + name) == lang.name);
    }
  }
}

TEST_CASE("malformed tables are errors that name the file and the offending value", "[data][languages]") {
  using Catch::Contains;
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [], "version": 2})"), Contains("test.json") && Contains("'version'"));
  REQUIRE_THROWS_WITH(table_from(R"({})"), Contains("test.json") && Contains("'languages'"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": {}})"), Contains("must be an array"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": [".c"], "extension": [".h"]}]})"),
                      Contains("languages[0]") && Contains("'extension'"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"extensions": [".c"]}]})"),
                      Contains("languages[0]") && Contains("missing required key 'name'"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "", "extensions": [".c"]}]})"),
                      Contains("languages[0]") && Contains("empty language name"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": [".c"]},
                                                   {"name": "C", "extensions": [".h"]}]})"),
                      Contains("languages[1]") && Contains("duplicate language name 'C'"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C"}]})"), Contains("missing required key 'extensions'"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": ".c"}]})"),
                      Contains("'extensions' must be an array") && Contains("\".c\""));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": [3]}]})"),
                      Contains("'extensions' must hold strings, got 3"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": []}]})"),
                      Contains("(C)") && Contains("no extensions and no file names"));
}

TEST_CASE("malformed extensions and file names are errors that name them", "[data][languages]") {
  using Catch::Contains;
  auto one = [](const std::string& extensions, const std::string& filenames = "[]") {
    return table_from(R"({"languages": [{"name": "C", "extensions": )" + extensions + R"(, "filenames": )" +
                      filenames + "}]}");
  };
  REQUIRE_THROWS_WITH(one(R"(["c"])"), Contains("(C)") && Contains("extension 'c' must start with '.'"));
  REQUIRE_THROWS_WITH(one(R"([""])"), Contains("extension '' must start with '.'"));
  REQUIRE_THROWS_WITH(one(R"(["."])"), Contains("extension '.' must start with '.' and name something"));
  REQUIRE_THROWS_WITH(one(R"([".c/h"])"), Contains("extension '.c/h' must not contain '/'"));
  REQUIRE_THROWS_WITH(one(R"([".c", ".C"])"),
                      Contains("extension '.C' (matched case-insensitively, as '.c') is listed twice for C"));
  REQUIRE_THROWS_WITH(one(R"([".c"])", R"([""])"), Contains("(C)") && Contains("empty file name"));
  REQUIRE_THROWS_WITH(one(R"([".c"])", R"(["src/Makefile"])"), Contains("file name 'src/Makefile'"));
  REQUIRE_THROWS_WITH(one(R"([".c"])", R"(["Makefile", "Makefile"])"),
                      Contains("file name 'Makefile' is listed twice for C"));
}

TEST_CASE("an extension or file name claimed by two languages names both", "[data][languages]") {
  using Catch::Contains;
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "C", "extensions": [".c", ".h"]},
                                                   {"name": "C++", "extensions": [".cpp", ".H"]}]})"),
                      Contains("languages[1] (C++)") && Contains("extension '.H'") && Contains("'.h'") &&
                          Contains("claimed by both C and C++"));
  REQUIRE_THROWS_WITH(table_from(R"({"languages": [{"name": "Make", "extensions": [], "filenames": ["Makefile"]},
                                                   {"name": "Other", "extensions": [], "filenames": ["Makefile"]}]})"),
                      Contains("file name 'Makefile' is claimed by both Make and Other"));
}

TEST_CASE("load reads a user's table and names a missing file", "[data][languages]") {
  const std::string dir = granite::test::scratch_dir("language_table");
  const std::string path = dir + "/languages.json";
  std::ofstream(path) << R"({"languages": [{"name": "Nim", "extensions": [".nim", ".nims"]}]})";
  const LanguageTable table = LanguageTable::load(path);
  CHECK(table.size() == 1);
  CHECK(language_of(table, "src/main.nim") == "Nim");
  CHECK(language_of(table, "main.py") == "");

  const std::string missing = dir + "/absent.json";
  REQUIRE_THROWS_WITH(LanguageTable::load(missing), Catch::Contains(missing));
  std::ofstream(dir + "/bad.json") << R"({"languages": [{"name": "Nim", "extensions": ["nim"]}]})";
  REQUIRE_THROWS_WITH(LanguageTable::load(dir + "/bad.json"),
                      Catch::Contains(dir + "/bad.json: languages[0] (Nim)") && Catch::Contains("'nim'"));
}

TEST_CASE("the shipped configs/data/languages.json loads and matches the built-in table", "[data][languages]") {
  const LanguageTable table = LanguageTable::load(granite::test::source_path("configs/data/languages.json"));
  REQUIRE(table.size() == LanguageTable::builtin().size());
  for (size_t i = 0; i < table.size(); ++i) {
    CHECK(table.languages()[i].name == LanguageTable::builtin().languages()[i].name);
    CHECK(table.languages()[i].extensions == LanguageTable::builtin().languages()[i].extensions);
    CHECK(table.languages()[i].filenames == LanguageTable::builtin().languages()[i].filenames);
  }
}
