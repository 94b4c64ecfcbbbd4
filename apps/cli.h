#pragma once
// What LibTorch apps add to cli_basic.h: device and dtype flags, and c10::Error messages without the backtrace.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <string>

#include "cli_basic.h"
#include "granite/core/dtype.h"

namespace granite::cli {

inline std::string describe_torch_error(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

inline c10::Device parse_device(const std::string& s) {
  try {
    return c10::Device(s);
  } catch (const c10::Error&) {
    GRANITE_FAIL("--device \"", s, "\" is not a device (cpu, cuda, cuda:1)");
  }
}

inline c10::ScalarType parse_dtype(const std::string& s) {
  const auto t = granite::dtype_from_name(s);
  GRANITE_CHECK(t.has_value(), "--dtype \"", s, "\" must be float32, bfloat16 or float16");
  return *t;
}

}  // namespace granite::cli
