#pragma once
// The parts of a ZIP archive that NumPy's np.savez and np.savez_compressed write (issue 21): a
// read-only memory mapping of the file, its central directory (ZIP64 included: NumPy forces
// ZIP64 headers on every member), and each member's bytes, either in place (stored) or inflated
// with zlib (deflated). Nothing else of ZIP is accepted: encryption, other compression methods,
// archives split over several disks are refused with one sentence naming the file.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cudl::detail {

// A read-only mapping of a whole regular file (non-empty), unmapped when the last owner goes.
struct FileMap {
  std::string path;
  const uint8_t* base = nullptr;
  size_t size = 0;

  // `kind` ("a .npy file") completes the sentence refusing an empty file.
  static std::shared_ptr<const FileMap> open(const std::string& path, const char* kind);
  ~FileMap();
  FileMap(const FileMap&) = delete;
  FileMap& operator=(const FileMap&) = delete;

 private:
  FileMap() = default;
};

struct ZipMember {
  std::string name;
  uint16_t method = 0;        // 0 stored, 8 deflated
  uint32_t crc = 0;
  uint64_t packed = 0;        // bytes in the archive
  uint64_t unpacked = 0;      // bytes of the member
  uint64_t data_offset = 0;   // where its (packed) bytes start in the archive
};

// The archive's members, in the central directory's order, each checked to lie inside the file.
std::vector<ZipMember> read_zip_directory(const FileMap& zip);

// A deflated member's bytes, inflated and checked against its size and CRC-32. Refuses a member
// whose announced size exceeds `limit` bytes, before allocating.
std::vector<uint8_t> inflate_member(const FileMap& zip, const ZipMember& member, uint64_t limit);

}  // namespace cudl::detail
