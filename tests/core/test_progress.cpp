// The number formats of progress lines (granite/core/progress.h).
#include <catch2/catch.hpp>

#include "granite/core/progress.h"

using namespace granite;

TEST_CASE("progress numbers: SI counts, decimal bytes, durations", "[core][progress]") {
  CHECK(format_si(950) == "950");
  CHECK(format_si(1234) == "1.2k");
  CHECK(format_si(3.456e6, 2) == "3.46M");
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1.5e6) == "1.5 MB");
  CHECK(format_bytes(2.04e9) == "2.0 GB");
  CHECK(format_duration(12.4) == "12s");
  CHECK(format_duration(185) == "3m05s");
  CHECK(format_duration(3720) == "1h02m");
  CHECK(format_duration(-1) == "--");
}
