#pragma once
// Floating-point parameter dtypes by name: the one map that config files (HF "torch_dtype"/"dtype"), checkpoint I/O
// and command-line flags share.
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

#include "granite/core/check.h"

namespace granite {

// "float32" | "fp32" | "float", "bfloat16" | "bf16", "float16" | "fp16" | "half"; nothing for any other name.
inline std::optional<c10::ScalarType> dtype_from_name(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return c10::kFloat;
  if (name == "bfloat16" || name == "bf16") return c10::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return c10::kHalf;
  return std::nullopt;
}

// The canonical (HF) name: "float32", "bfloat16", "float16".
inline std::string dtype_name(c10::ScalarType t) {
  if (t == c10::kBFloat16) return "bfloat16";
  if (t == c10::kHalf) return "float16";
  GRANITE_CHECK(t == c10::kFloat, "model parameters must be float32, bfloat16 or float16, got ", t);
  return "float32";
}

}  // namespace granite
