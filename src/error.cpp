#include "cudl/error.hpp"

namespace cudl::detail {

void fail(const char* file, int line, const std::string& message) {
  std::string where(file);
  const auto slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(where + ":" + std::to_string(line) + ": " + message);
}

}  // namespace cudl::detail
