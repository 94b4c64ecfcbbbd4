// The schedules' endpoints and shapes, pinned: the paper's phase 1 (warmup 2k, cosine 3e-4 -> 3e-5) and phase 2
// (exponential decay to 10%), plus the JSON round trip and its errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "granite/train/lr_schedule.h"

using Catch::Matchers::Contains;
using granite::lr_at;
using granite::ScheduleConfig;
using granite::ScheduleKind;

TEST_CASE("cosine with warmup: the paper's phase 1 endpoints", "[train][schedule]") {
  ScheduleConfig c;
  c.kind = ScheduleKind::kCosine;
  c.peak_lr = 3e-4;
  c.min_lr = 3e-5;
  c.warmup_steps = 2000;
  c.decay_steps = 10000;
  CHECK(lr_at(0, c) == Approx(3e-4 / 2000));
  CHECK(lr_at(999, c) == Approx(3e-4 * 1000 / 2000));
  CHECK(lr_at(1999, c) == Approx(3e-4));
  CHECK(lr_at(2000, c) == Approx(3e-4));               // decay starts at the peak
  CHECK(lr_at(2000 + 5000, c) == Approx(1.65e-4));     // halfway: the mean of peak and floor
  CHECK(lr_at(2000 + 10000, c) == Approx(3e-5));       // the floor
  CHECK(lr_at(1000000, c) == Approx(3e-5));            // and it stays there
  for (int64_t s = 2001; s < 12000; s += 37) CHECK(lr_at(s, c) <= lr_at(s - 1, c));  // monotone decay
}

TEST_CASE("exponential decay to 10%: the paper's phase 2 endpoints", "[train][schedule]") {
  ScheduleConfig c;
  c.kind = ScheduleKind::kExponential;
  c.peak_lr = 1.5e-4;  // 20B / 34B
  c.final_fraction = 0.1;
  c.warmup_steps = 0;
  c.decay_steps = 1000;
  CHECK(lr_at(0, c) == Approx(1.5e-4));
  CHECK(lr_at(500, c) == Approx(1.5e-4 * std::sqrt(0.1)));
  CHECK(lr_at(1000, c) == Approx(1.5e-5));
  CHECK(lr_at(5000, c) == Approx(1.5e-5));
  CHECK(lr_at(250, c) / lr_at(0, c) == Approx(lr_at(750, c) / lr_at(500, c)));  // constant ratio per step
}

TEST_CASE("constant schedule and schedule JSON", "[train][schedule]") {
  ScheduleConfig c;
  c.kind = ScheduleKind::kConstant;
  c.peak_lr = 1e-3;
  c.warmup_steps = 10;
  CHECK(lr_at(4, c) == Approx(5e-4));
  CHECK(lr_at(10, c) == Approx(1e-3));
  CHECK(lr_at(99999, c) == Approx(1e-3));
  const auto parsed = granite::schedule_config_from_json(granite::to_json(c), "s");
  CHECK(parsed.kind == ScheduleKind::kConstant);
  CHECK(parsed.warmup_steps == 10);
  using granite::Json;
  auto parse = [](const char* text) { return granite::schedule_config_from_json(Json::parse(text), "sched"); };
  CHECK_THROWS_WITH(parse(R"({"kind": "linear"})"), Contains("linear"));
  CHECK_THROWS_WITH(parse(R"({"peak_lr": 0})"), Contains("peak_lr"));
  CHECK_THROWS_WITH(parse(R"({"warmup": 10})"), Contains("warmup"));
  CHECK_THROWS_WITH(parse(R"({"peak_lr": 1e-4, "min_lr": 1e-3})"), Contains("min_lr"));
  CHECK_THROWS(lr_at(-1, c));
}
