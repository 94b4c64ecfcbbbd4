#pragma once
// Progress of a long job on stderr. On a terminal: one status line rewritten in place, at most 5 times a second.
// Not on a terminal (CI logs, redirected output): a plain line every `plain_interval_s` seconds, so logs stay short
// and readable. Callers format their own fields (documents/s, MB/s, loss, MFU, ETA) with the helpers below.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace granite {

class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* stream = stderr, double plain_interval_s = 10, bool enabled = true);
  // Whether update() would print now; lets callers skip formatting a line nobody will see.
  bool due() const;
  void update(const std::string& text);  // printed if due()
  void finish(const std::string& text);  // always printed; ends the in-place line
  bool is_terminal() const { return terminal_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* stream_;
  bool terminal_, enabled_;
  double interval_s_;
  Clock::time_point last_;
  bool printed_ = false;
  size_t last_width_ = 0;
};

std::string format_duration(double seconds);     // "12s", "3m05s", "1h02m", "--" for unknown / negative
std::string format_si(double value, int digits = 1);  // 950, 1.2k, 3.4M, 5.6G
std::string format_bytes(double bytes);          // 1.5 MB, 2.0 GB (decimal units, as rates are quoted)

}  // namespace granite
