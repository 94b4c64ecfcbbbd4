#pragma once
// Learning-rate schedules as pure functions of the step (no state to checkpoint), the Granite Code recipe's shapes
// (granite-facts.md: training recipe):
//   cosine       phase 1: linear warmup 0 -> peak over `warmup_steps`, then cosine from peak to `min_lr` at
//                `decay_steps` (3e-4 -> 3e-5, 2k warmup in the paper), min_lr after that
//   exponential  phase 2: warmup as above, then peak * final_fraction^(s / decay_steps) (decay to 10% of the start in
//                the paper; s counts steps after the warmup), clamped at peak * final_fraction after decay_steps
//   constant     warmup, then peak
// Step numbering: lr_at(step) is the rate used by optimizer step `step` (0-based); warmup's first step gets
// peak / warmup_steps (not 0, which would waste a step), as torchtitan and Megatron do.
#include <cstdint>
#include <string>

#include "granite/core/json.h"

namespace granite {

enum class ScheduleKind { kCosine, kExponential, kConstant };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kCosine;
  double peak_lr = 3e-4;
  int64_t warmup_steps = 0;
  int64_t decay_steps = 0;      // steps after the warmup over which the decay runs (cosine, exponential)
  double min_lr = 3e-5;         // cosine floor
  double final_fraction = 0.1;  // exponential: the rate reaches peak * final_fraction after decay_steps
};

double lr_at(int64_t step, const ScheduleConfig& config);

// {"kind": "cosine"|"exponential"|"constant", "peak_lr", "warmup_steps", "decay_steps", "min_lr", "final_fraction"};
// unknown keys and impossible values are errors naming `where`.
ScheduleConfig schedule_config_from_json(const Json& j, const std::string& where);
Json to_json(const ScheduleConfig& config);

}  // namespace granite
