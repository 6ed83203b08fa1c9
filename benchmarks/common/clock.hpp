#pragma once
// The benchmark programs' clocks: elapsed seconds for the timings, the UTC date for the reports.
#include <chrono>
#include <ctime>
#include <string>

namespace bench {

using Clock = std::chrono::steady_clock;

// Seconds from t0 to now.
inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Now as ISO 8601 in UTC, e.g. "2026-11-24T03:13:40Z".
inline std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

}  // namespace bench
