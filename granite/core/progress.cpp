#include "granite/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace granite {

ProgressLine::ProgressLine(std::FILE* stream, double plain_interval_s, bool enabled)
    : stream_(stream),
      terminal_(isatty(fileno(stream)) == 1),
      enabled_(enabled),
      interval_s_(terminal_ ? 0.2 : plain_interval_s),
      last_(Clock::now()) {}

bool ProgressLine::due() const {
  if (!enabled_) return false;
  return std::chrono::duration<double>(Clock::now() - last_).count() >= interval_s_;
}

void ProgressLine::update(const std::string& text) {
  if (!due()) return;
  last_ = Clock::now();
  if (terminal_) {
    // Pad with spaces so a shorter line fully covers the previous one.
    std::string line = text;
    if (line.size() < last_width_) line.append(last_width_ - line.size(), ' ');
    last_width_ = text.size();
    std::fprintf(stream_, "\r%s", line.c_str());
  } else {
    std::fprintf(stream_, "%s\n", text.c_str());
  }
  printed_ = true;
  std::fflush(stream_);
}

void ProgressLine::finish(const std::string& text) {
  if (!enabled_) return;
  if (terminal_ && printed_) {
    std::string line = text;
    if (line.size() < last_width_) line.append(last_width_ - line.size(), ' ');
    std::fprintf(stream_, "\r%s\n", line.c_str());
  } else {
    std::fprintf(stream_, "%s\n", text.c_str());
  }
  printed_ = false;
  last_width_ = 0;
  last_ = Clock::now();
  std::fflush(stream_);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "--";
  char buf[32];
  const long s = long(std::lround(seconds));
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%lds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  }
  return buf;
}

namespace {

// value / 1000^k with the k-th unit, k as large as keeps |value| >= 1 (up to the last unit).
std::string scaled(double value, const char* const (&units)[6], int digits, const char* separator) {
  int i = 0;
  while (std::fabs(value) >= 1000 && i < 5) {
    value /= 1000;
    ++i;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f%s%s", i == 0 ? 0 : digits, value, separator, units[i]);
  return buf;
}

}  // namespace

std::string format_si(double value, int digits) {
  static const char* const kSuffix[6] = {"", "k", "M", "G", "T", "P"};
  return scaled(value, kSuffix, digits, "");
}

std::string format_bytes(double bytes) {
  static const char* const kUnit[6] = {"B", "kB", "MB", "GB", "TB", "PB"};
  return scaled(bytes, kUnit, 1, " ");
}

}  // namespace granite
