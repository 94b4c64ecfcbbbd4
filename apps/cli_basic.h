#pragma once
// Pieces every app shares, LibTorch-free: the error boundary (granite::Error -> message + exit 1) and parsers for
// flags that recur (comma-separated ids, byte sizes). LibTorch apps add cli.h (devices, dtypes, c10 errors).
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "granite/core/check.h"

namespace granite::cli {

inline std::string describe_error(const std::exception& e) { return e.what(); }

// Runs `body`; any error becomes "<program>: error: <message>" on stderr and exit status 1. `describe` renders
// exceptions other than granite::Error (cli.h's describe_torch_error drops c10::Error's backtrace).
inline int guarded_main(const char* program, const std::function<int()>& body,
                        std::string (*describe)(const std::exception&) = describe_error) {
  try {
    return body();
  } catch (const granite::Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << describe(e) << "\n";
  }
  return 1;
}

// "5,17,42" -> {5, 17, 42}
inline std::vector<int64_t> parse_ids(const std::string& csv, const std::string& flag) {
  std::vector<int64_t> ids;
  std::stringstream in(csv);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GRANITE_CHECK(used == item.size() && !item.empty(), flag, ": \"", item, "\" is not an integer token id (in \"",
                  csv, "\")");
    ids.push_back(v);
  }
  return ids;
}

// "5GB", "500MB", "1024" -> bytes (decimal units, as HF's max_shard_size).
inline int64_t parse_bytes(const std::string& s, const std::string& flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    GRANITE_FAIL(flag, ": \"", s, "\" is not a size (e.g. 5GB, 200MB, 1048576)");
  }
  const std::string unit = s.substr(used);
  double mult = unit.empty() || unit == "B" ? 1 : unit == "KB" ? 1e3 : unit == "MB" ? 1e6 : unit == "GB" ? 1e9 : -1;
  GRANITE_CHECK(mult > 0 && v > 0, flag, ": \"", s, "\" is not a size (e.g. 5GB, 200MB, 1048576)");
  return int64_t(v * mult);
}

}  // namespace granite::cli
