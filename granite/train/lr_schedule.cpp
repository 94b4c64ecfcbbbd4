#include "granite/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "granite/core/check.h"

namespace granite {

namespace {
constexpr double kPi = 3.14159265358979323846;

const char* kind_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kCosine: return "cosine";
    case ScheduleKind::kExponential: return "exponential";
    case ScheduleKind::kConstant: return "constant";
  }
  return "?";
}
}  // namespace

double lr_at(int64_t step, const ScheduleConfig& c) {
  GRANITE_CHECK(step >= 0, "learning-rate schedule: step ", step, " is negative");
  if (step < c.warmup_steps) return c.peak_lr * double(step + 1) / double(c.warmup_steps);
  const int64_t s = step - c.warmup_steps;  // steps into the decay
  switch (c.kind) {
    case ScheduleKind::kConstant: return c.peak_lr;
    case ScheduleKind::kCosine: {
      if (c.decay_steps <= 0 || s >= c.decay_steps) return c.decay_steps <= 0 ? c.peak_lr : c.min_lr;
      const double progress = double(s) / double(c.decay_steps);
      return c.min_lr + 0.5 * (c.peak_lr - c.min_lr) * (1.0 + std::cos(kPi * progress));
    }
    case ScheduleKind::kExponential: {
      if (c.decay_steps <= 0) return c.peak_lr;
      const double progress = std::min(1.0, double(s) / double(c.decay_steps));
      return c.peak_lr * std::pow(c.final_fraction, progress);
    }
  }
  return c.peak_lr;
}

ScheduleConfig schedule_config_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  ScheduleConfig c;
  const std::string kind = r.optional<std::string>("kind", "cosine");
  if (kind == "cosine") {
    c.kind = ScheduleKind::kCosine;
  } else if (kind == "exponential") {
    c.kind = ScheduleKind::kExponential;
  } else if (kind == "constant") {
    c.kind = ScheduleKind::kConstant;
  } else {
    GRANITE_FAIL(where, ": kind \"", kind, "\" is not a schedule (cosine, exponential, constant)");
  }
  c.peak_lr = r.optional<double>("peak_lr", c.peak_lr);
  c.warmup_steps = r.optional<int64_t>("warmup_steps", c.warmup_steps);
  c.decay_steps = r.optional<int64_t>("decay_steps", c.decay_steps);
  c.min_lr = r.optional<double>("min_lr", c.min_lr);
  c.final_fraction = r.optional<double>("final_fraction", c.final_fraction);
  r.finish();
  GRANITE_CHECK(c.peak_lr > 0, where, ": peak_lr must be > 0, got ", c.peak_lr);
  GRANITE_CHECK(c.warmup_steps >= 0, where, ": warmup_steps must be >= 0, got ", c.warmup_steps);
  GRANITE_CHECK(c.decay_steps >= 0, where, ": decay_steps must be >= 0, got ", c.decay_steps);
  GRANITE_CHECK(c.min_lr >= 0 && c.min_lr <= c.peak_lr, where, ": min_lr must be in [0, peak_lr], got ", c.min_lr);
  GRANITE_CHECK(c.final_fraction > 0 && c.final_fraction <= 1, where, ": final_fraction must be in (0, 1], got ",
                c.final_fraction);
  return c;
}

Json to_json(const ScheduleConfig& c) {
  return {{"kind", kind_name(c.kind)},   {"peak_lr", c.peak_lr}, {"warmup_steps", c.warmup_steps},
          {"decay_steps", c.decay_steps}, {"min_lr", c.min_lr},   {"final_fraction", c.final_fraction}};
}

}  // namespace granite
