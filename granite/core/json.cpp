#include "granite/core/json.h"

#include <fstream>
#include <sstream>

#include "granite/core/check.h"

namespace granite {

Json parse_json(const std::string& text, const std::string& where) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    GRANITE_FAIL(where, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GRANITE_CHECK(in.good(), path, ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  GRANITE_CHECK(!in.bad(), path, ": read error");
  return parse_json(text.str(), path);
}

std::string json_preview(const Json& value) {
  std::string s = value.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

JsonReader::JsonReader(const Json& object, std::string where) : object_(object), where_(std::move(where)) {
  GRANITE_CHECK(object_.is_object(), where_, ": expected a JSON object, got ", json_preview(object_));
}

bool JsonReader::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const Json* JsonReader::raw(const std::string& key) {
  consumed_.insert(key);
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

void JsonReader::ignore(const std::string& key) { consumed_.insert(key); }

void JsonReader::finish() const {
  std::string unknown;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (consumed_.count(it.key()) == 0) unknown += (unknown.empty() ? "'" : ", '") + it.key() + "'";
  }
  GRANITE_CHECK(unknown.empty(), where_, ": unknown key(s) ", unknown);
}

namespace {
template <typename T>
T convert(const Json& v, const std::string& where, const std::string& key);

template <>
int64_t convert<int64_t>(const Json& v, const std::string& where, const std::string& key) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // 1e4 written as a float that is integral is accepted (HF writes "rope_theta": 10000.0 next to ints).
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  GRANITE_FAIL(where, ": key '", key, "' must be an integer, got ", json_preview(v));
}
template <>
uint64_t convert<uint64_t>(const Json& v, const std::string& where, const std::string& key) {
  // Seeds and other counts that cannot be negative: an integer >= 0 (as convert<int64_t> accepts it).
  const int64_t value = convert<int64_t>(v, where, key);
  GRANITE_CHECK(value >= 0, where, ": key '", key, "' must be >= 0, got ", value);
  return uint64_t(value);
}
template <>
double convert<double>(const Json& v, const std::string& where, const std::string& key) {
  GRANITE_CHECK(v.is_number(), where, ": key '", key, "' must be a number, got ", json_preview(v));
  return v.get<double>();
}
template <>
bool convert<bool>(const Json& v, const std::string& where, const std::string& key) {
  GRANITE_CHECK(v.is_boolean(), where, ": key '", key, "' must be true or false, got ", json_preview(v));
  return v.get<bool>();
}
template <>
std::string convert<std::string>(const Json& v, const std::string& where, const std::string& key) {
  GRANITE_CHECK(v.is_string(), where, ": key '", key, "' must be a string, got ", json_preview(v));
  return v.get<std::string>();
}
}  // namespace

template <typename T>
T JsonReader::required(const std::string& key) {
  const Json* v = raw(key);
  GRANITE_CHECK(v != nullptr && !v->is_null(), where_, ": missing required key '", key, "'");
  return convert<T>(*v, where_, key);
}

template <typename T>
T JsonReader::optional(const std::string& key, const T& fallback) {
  const Json* v = raw(key);
  if (v == nullptr || v->is_null()) return fallback;
  return convert<T>(*v, where_, key);
}

template int64_t JsonReader::required<int64_t>(const std::string&);
template double JsonReader::required<double>(const std::string&);
template bool JsonReader::required<bool>(const std::string&);
template std::string JsonReader::required<std::string>(const std::string&);
template int64_t JsonReader::optional<int64_t>(const std::string&, const int64_t&);
template uint64_t JsonReader::optional<uint64_t>(const std::string&, const uint64_t&);
template double JsonReader::optional<double>(const std::string&, const double&);
template bool JsonReader::optional<bool>(const std::string&, const bool&);
template std::string JsonReader::optional<std::string>(const std::string&, const std::string&);

}  // namespace granite
