#pragma once
// One CSV cell read as a float (src/data/csv.cpp): what the text is (a number, a missing-value
// mark, text, inf, or a number beyond float's range) and, for a number, its nearest float.
// std::from_chars rather than parse_number.hpp's strtof: it reads the whole of a view without a
// copy, ignores the locale (a German locale would otherwise make "1.5" text) and is several
// times faster, which matters at 47 million cells (60,000 × 785).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace cudl::detail {

enum class CellKind { kNumber, kMissing, kText, kInfinite, kOutOfRange };

inline std::string_view trim_cell(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// Whether a decimal number that from_chars found out of float's range is too large (rather than
// too small to be anything but 0): the decimal exponent of its first nonzero digit is positive.
inline bool too_large(std::string_view s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  int64_t lead = 0, zeros = 0;
  bool point = false, seen = false;
  for (; i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'); ++i) {
    if (s[i] == '.') {
      point = true;
    } else if (!seen && s[i] == '0') {
      if (point) ++zeros;
    } else {
      seen = true;
      if (!point) ++lead;
    }
  }
  int64_t exponent = seen ? (lead > 0 ? lead - 1 : -(zeros + 1)) : 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    const bool negative = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    int64_t e = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) e = std::min<int64_t>(e * 10 + (s[i] - '0'), 1000000000);
    exponent += negative ? -e : e;
  }
  return exponent > 0;
}

// Reads a trimmed cell. A number is written into v (a number too small for a float becomes a
// signed 0); NaN in any spelling from_chars takes, and the marks NA, N/A, null and None (any
// case) and the empty cell, are kMissing.
inline CellKind read_cell(std::string_view s, float& v) {
  if (s.empty()) return CellKind::kMissing;
  std::string_view body = s;
  if (body[0] == '+') {  // from_chars takes no '+'; "+-1" and "++1" stay text
    body.remove_prefix(1);
    if (body.empty() || body[0] == '+' || body[0] == '-') return CellKind::kText;
  }
  const char* end = body.data() + body.size();
  const std::from_chars_result r = std::from_chars(body.data(), end, v);
  if (r.ptr == end) {
    if (r.ec == std::errc()) return std::isnan(v) ? CellKind::kMissing : std::isinf(v) ? CellKind::kInfinite : CellKind::kNumber;
    if (r.ec == std::errc::result_out_of_range) {
      if (too_large(body)) return CellKind::kOutOfRange;
      v = body[0] == '-' ? -0.0f : 0.0f;
      return CellKind::kNumber;
    }
  }
  for (const char* mark : {"na", "n/a", "null", "none"})
    if (equals_ignoring_case(s, mark)) return CellKind::kMissing;
  return CellKind::kText;
}

// Whether a trimmed cell is an integer as written ("3", "+3"; not "3.0", "3e0" or "-3").
inline bool integer_text(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  for (const char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Up to 40 bytes of a cell or a name for a message (not cutting a UTF-8 character), control
// bytes as \xNN.
inline std::string shown_cell(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  size_t n = std::min<size_t>(s.size(), 40);
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (n < s.size()) out += "...";
  return out;
}

}  // namespace cudl::detail
