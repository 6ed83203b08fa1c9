#pragma once
// The command line of every cudl program (bench_dbn, bench_vgg and the examples), through one
// maintained parser, CLI11 (Debian's libcli11-dev, header-only): `--opt=value` and `--opt value`,
// -h/--help and --version on stdout (exit 0), and every error as one line "PROGRAM: MESSAGE" on
// stderr (exit 2). The values go through the checks below, whose errors name the flag. Header-only
// so that the examples, which link only cudl, share it without a library of their own.
#include <CLI/CLI.hpp>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "cudl/version.hpp"

namespace bench {

// text as a finite number; throws cudl::Error "FLAG: expected a number, found 'TEXT'".
inline double parse_number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    throw cudl::Error(flag + ": expected a number, found '" + text + "'");
  return v;
}

namespace detail {

[[noreturn]] inline void not_whole(const std::string& flag, const std::string& text, const std::string& lo,
                                   const std::string& hi) {
  parse_number(flag, text);  // text that is no number at all says so
  throw cudl::Error(flag + ": expected a whole number in [" + lo + ", " + hi + "], found '" + text + "'");
}

// Digits after an optional sign, and nothing else (strtoll alone skips spaces and accepts "+").
inline bool whole_text(const std::string& text, bool sign) {
  size_t i = sign && !text.empty() && text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  return true;
}

}  // namespace detail

// text as a whole number (decimal digits) in [lo, hi]; throws cudl::Error "FLAG: expected a
// whole number in [LO, HI], found 'TEXT'" (or "expected a number" for text that is none). Never
// narrows: parse_whole<T> checks the range of the type it returns.
inline int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  errno = 0;
  const long long v = detail::whole_text(text, true) ? std::strtoll(text.c_str(), nullptr, 10) : 0;
  if (!detail::whole_text(text, true) || errno == ERANGE || v < lo || v > hi)
    detail::not_whole(flag, text, std::to_string(lo), std::to_string(hi));
  return v;
}

inline uint64_t parse_uint64(const std::string& flag, const std::string& text) {
  errno = 0;
  const unsigned long long v = detail::whole_text(text, false) ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!detail::whole_text(text, false) || errno == ERANGE)
    detail::not_whole(flag, text, "0", std::to_string(std::numeric_limits<uint64_t>::max()));
  return v;
}

template <typename T>
T parse_whole(const std::string& flag, const std::string& text, T lo, T hi = std::numeric_limits<T>::max()) {
  static_assert(std::is_signed_v<T> && sizeof(T) <= sizeof(int64_t), "parse_uint64 for unsigned values");
  return static_cast<T>(parse_int(flag, text, lo, hi));
}

// --device: "cpu" or "gpu", returned as given; anything else throws cudl::Error.
inline std::string parse_device(const std::string& text) {
  if (text != "cpu" && text != "gpu") throw cudl::Error("--device: expected cpu or gpu, found '" + text + "'");
  return text;
}

// --precision: fp32, tf32 or bf16; anything else throws cudl::Error.
inline cudl::Precision parse_precision(const std::string& text) {
  for (cudl::Precision p : {cudl::Precision::kFp32, cudl::Precision::kTf32, cudl::Precision::kBf16})
    if (text == cudl::to_string(p)) return p;
  throw cudl::Error("--precision: expected fp32, tf32 or bf16, found '" + text + "'");
}

// --conv-determinism: any or deterministic; anything else throws cudl::Error.
inline cudl::ConvDeterminism parse_conv_determinism(const std::string& text) {
  for (cudl::ConvDeterminism d : {cudl::ConvDeterminism::kAny, cudl::ConvDeterminism::kDeterministic})
    if (text == cudl::to_string(d)) return d;
  throw cudl::Error("--conv-determinism: expected any or deterministic, found '" + text + "'");
}

// An option (or, for a NAME without dashes, a positional argument) whose text goes to `set`,
// which checks it with the functions above (their cudl::Error names the flag); TYPE is how --help
// shows its value (N, X, FILE, cpu|gpu, ...).
inline CLI::Option* add_value(CLI::App& app, const std::string& name, const std::string& type,
                              const std::string& description, std::function<void(const std::string&)> set) {
  return app.add_option_function<std::string>(name, std::move(set), description)->type_name(type);
}

// --precision as every program takes it (fp32|tf32|bf16, what each means on each device), into
// *precision. What a backend then runs is Backend::precision(): the CPU runs tf32 as fp32.
inline CLI::Option* add_precision(CLI::App& app, cudl::Precision* precision) {
  return add_value(app, "--precision", "fp32|tf32|bf16",
                   "arithmetic of the products (matrix products, convolutions): fp32 strict\n"
                   "(default); tf32 on the GPU's tensor cores (the CPU runs fp32); bf16\n"
                   "operands and results, fp32 sums, as PyTorch's autocast: the GPU's bf16\n"
                   "tensor cores; on the CPU emulated by rounding (slower; for checking)",
                   [precision](const std::string& v) { *precision = parse_precision(v); });
}

// --conv-determinism as the programs that train convolutions take it, into *determinism
// (BackendOptions::conv_determinism).
inline CLI::Option* add_conv_determinism(CLI::App& app, cudl::ConvDeterminism* determinism) {
  return add_value(app, "--conv-determinism", "any|deterministic",
                   "the GPU's cuDNN convolution engines: any (default) or deterministic\n"
                   "(direct and implicit-GEMM engines only: none that cuDNN notes as\n"
                   "nondeterministic, FFT or Winograd); the CPU's convolutions are\n"
                   "deterministic either way",
                   [determinism](const std::string& v) { *determinism = parse_conv_determinism(v); });
}

// For the checks after parsing (parse_command_line's `check`; a path given as a positional argument
// is only checked when it was given, not its default): throws cudl::Error "NAME: PATH: no such
// folder" (or file) when path names no folder (or no file).
inline void require_path(const std::string& name, const std::string& path, bool folder) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  const char* kind = folder ? "folder" : "file";
  if (!std::filesystem::exists(st)) throw cudl::Error(name + ": " + path + ": no such " + kind);
  if (std::filesystem::is_directory(st) != folder)
    throw cudl::Error(name + ": " + path + ": " + (folder ? "a file" : "a folder") + ", not a " + kind);
}

// Sets up app as every cudl program's: -h/--help, --version ("PROGRAM cudl X.Y.Z"), descriptions
// from `column` on (a description's own line breaks stay, indented to it), and a repeated option
// takes its last value, as the hand-written parsers did. Call before adding options (the policy
// applies to options added after it).
inline void setup_app(CLI::App& app, size_t column) {
  app.set_help_flag("-h,--help", "this text");
  app.set_version_flag("--version", app.get_name() + " cudl " CUDL_VERSION_STRING,
                       "the program's name and cudl's version");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // parse_command_line names the first argument nobody took; CLI11 would list them all, last
  // first ("The following arguments were not expected: 1 --frobnicate").
  app.allow_extras();
  app.get_formatter()->column_width(column);
  app.get_formatter()->label("Usage", "usage");
  app.get_formatter()->label("Positionals", "Arguments");
  app.get_formatter()->label("REQUIRED", "");  // the usage line brackets the arguments that are not
}

namespace detail {

// What is wrong with the first argument no option or argument took ("" when all were taken):
// "unknown option '--x' (see --help)" or "unexpected argument 'x' (see --help)".
inline std::string unexpected(const CLI::App& app) {
  const std::vector<std::string> extra = app.remaining();
  if (extra.empty()) return "";
  const std::string& first = extra.front();
  if (first.size() > 1 && first[0] == '-' && first != "--" && !std::isdigit(static_cast<unsigned char>(first[1])))
    return "unknown option '" + first.substr(0, first.find('=')) + "' (see --help)";
  return "unexpected argument '" + first + "' (see --help)";
}

}  // namespace detail

// Parses argv into app, then runs `check` (checks across options; it throws cudl::Error). Returns
// nothing when the program goes on, else the status it exits with: 0 after printing --help or
// --version on stdout, 2 after printing "PROGRAM: MESSAGE" on stderr for a bad command line (a
// flag without a value, a bad value, an unknown option, a missing or extra argument). An unknown
// option is named before any other error: the others are often its consequences (its value taken
// for a positional argument, a required argument then missing).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv,
                                             const std::function<void()>& check = {}) {
  const std::string program = app.get_name();
  const auto fail = [&](const char* message) {
    const std::string extra = detail::unexpected(app);
    std::fprintf(stderr, "%s: %s\n", program.c_str(), extra.empty() ? message : extra.c_str());
    return 2;
  };
  try {
    app.parse(argc, argv);
    const std::string extra = detail::unexpected(app);
    if (!extra.empty()) throw cudl::Error(extra);
    if (check) check();
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help() << std::flush;
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << std::endl;
    return 0;
  } catch (const CLI::ParseError& e) {  // CLI11's own: a flag without its value, a missing argument
    return fail(e.what());
  } catch (const cudl::Error& e) {  // the value checks and `check`
    return fail(e.what());
  }
  return std::nullopt;
}

}  // namespace bench
