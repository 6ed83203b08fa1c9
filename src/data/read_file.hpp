#pragma once
// Reading a regular file into memory, for the loaders that parse or decode whole files (CSV, PNG,
// JPEG). Private to the library.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "cudl/error.hpp"

namespace cudl::detail {

// Reads the first `limit` bytes of the regular file at `path` (all of it when limit < 0) into
// `out` (a std::string or std::vector<uint8_t>, resized to what was read) and returns the file's
// size. `kind` completes the sentence refusing an empty file ("no CSV rows"). Throws Error naming
// the file: cannot open, not a regular file, empty, a read error, a file that shrank meanwhile.
template <typename Bytes>
int64_t read_file(const std::string& path, int64_t limit, Bytes& out, const char* kind) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  const auto size = static_cast<int64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw Error(path + ": empty file, " + kind);
  }
  const int64_t want = limit < 0 ? size : std::min(size, limit);
  out.resize(static_cast<size_t>(want));
  int64_t got = 0;
  while (got < want) {
    const ssize_t r = ::read(fd, reinterpret_cast<char*>(out.data()) + got, static_cast<size_t>(want - got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(path + ": cannot read: " + (r == 0 ? std::string("the file shrank while it was read") : std::strerror(err)));
    }
    got += r;
  }
  ::close(fd);
  return size;
}

}  // namespace cudl::detail
