#pragma once
// JSON input with errors that name the file, the key and the offending value, and a strict object reader:
// every key must be consumed (read or explicitly ignored), so a typo in a config is an error, never silently dropped.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>

namespace granite {

using Json = nlohmann::json;

// Parses a whole file; errors name the path and the parser's byte position.
Json read_json_file(const std::string& path);
// Parses text that came from `where` (a path or "--set foo=bar").
Json parse_json(const std::string& text, const std::string& where);

// Reads one JSON object field by field. `where` prefixes every message ("configs/models/x.json").
class JsonReader {
 public:
  JsonReader(const Json& object, std::string where);

  bool has(const std::string& key) const;  // present and not null
  template <typename T>
  T required(const std::string& key);
  template <typename T>
  T optional(const std::string& key, const T& fallback);
  // The raw value (marks it consumed); nullptr when absent.
  const Json* raw(const std::string& key);
  // Keys we accept and deliberately do not use (HF metadata such as "transformers_version").
  void ignore(const std::string& key);
  // Throws naming every key that was never consumed.
  void finish() const;

  const std::string& where() const { return where_; }

 private:
  const Json& object_;
  std::string where_;
  std::set<std::string> consumed_;
};

// "hidden_size (\"abc\")" style rendering of a value for messages, truncated to a sane length.
std::string json_preview(const Json& value);

}  // namespace granite
