#pragma once
// Language identification by file name, as StarCoder and Granite do it (extension only; the Granite Code paper keeps
// 116 programming languages, listed in its Appendix A). The table is data: configs/data/languages.json, compiled
// into the library as the built-in default and replaceable with a user's file of the same shape:
//   {"languages": [{"name": "Python", "extensions": [".py", ".pyi"], "filenames": ["SConstruct"]}, ...]}
// Extensions match case-insensitively and the longest one wins (".d.ts" before ".ts"); exact, case-sensitive file
// names ("Dockerfile", "Makefile", "CMakeLists.txt") match before extensions. A leading dot marks a hidden file, not
// an extension: ".bashrc" has none, ".eslintrc.json" has ".json". An extension or file name claimed by two languages
// is an error naming both, so every file has at most one language. The choices for ambiguous extensions (".h", ".m",
// ".pl", ".v", ...) are documented in configs/data/README.md.
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "granite/core/json.h"

namespace granite {

struct Language {
  std::string name;
  std::vector<std::string> extensions;  // with the leading dot, as written in the table
  std::vector<std::string> filenames;   // exact base names
};

class LanguageTable {
 public:
  // Errors name `where` (a path) and the offending key or value: unknown keys, empty names, duplicate names,
  // extensions without a leading dot, an extension or file name claimed twice.
  static LanguageTable from_json(const Json& json, const std::string& where);
  static LanguageTable load(const std::string& path);
  // configs/data/languages.json as it was at build time.
  static const LanguageTable& builtin();

  // The language of a file, from its path's base name; nullptr when the table has none for it.
  const Language* identify(std::string_view path) const;
  // By name (exact); nullptr when absent.
  const Language* find(std::string_view name) const;

  const std::vector<Language>& languages() const { return languages_; }
  size_t size() const { return languages_.size(); }

 private:
  std::vector<Language> languages_;
  std::unordered_map<std::string, size_t> by_extension_;  // lower-cased extension -> index
  std::unordered_map<std::string, size_t> by_filename_;   // exact base name -> index
  size_t max_extension_dots_ = 1;                         // ".d.ts" has 2
};

}  // namespace granite
