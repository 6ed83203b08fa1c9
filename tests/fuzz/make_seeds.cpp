// Writes the seed corpus of the safetensors fuzzer (run_fuzz.sh runs it when the corpus folder is
// empty): valid files from the writer, files laid out as other writers lay them out, and a few
// near misses that reach the later checks (overlap, hole, CRC).
// Usage: make_seeds DIR
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/safetensors.hpp"

namespace {

void put(const std::string& path, const std::string& header, const std::vector<uint8_t>& data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  for (int i = 0; i < 8; ++i) std::fputc(static_cast<int>((uint64_t{header.size()} >> (8 * i)) & 0xff), f);
  std::fwrite(header.data(), 1, header.size(), f);
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  using cudl::io::DType;
  const std::vector<float> f32 = {1.5f, -2.f, 3.25f, 0.f, 1e-30f, 7.f};
  const std::vector<double> f64 = {3.14, -1e300};
  const std::vector<int32_t> i32 = {-7, 2, 0, 9};
  const std::vector<int64_t> i64 = {-5, 5, 9};
  const std::vector<uint8_t> u8 = {1, 2, 255};
  const std::vector<uint32_t> u32 = {4000000000u, 1u};
  const uint64_t step = 12345;
  cudl::io::write_safetensors(dir + "/all_dtypes.safetensors",
                              {{"layer0.weight", DType::kF32, {2, 3}, f32.data()},
                               {"d", DType::kF64, {2}, f64.data()},
                               {"i", DType::kI32, {2, 2}, i32.data()},
                               {"l", DType::kI64, {3}, i64.data()},
                               {"bytes", DType::kU8, {3}, u8.data()},
                               {"empty", DType::kF32, {0, 4}, nullptr},
                               {"u", DType::kU32, {2}, u32.data()},
                               {"optimizer.step", DType::kU64, {}, &step}},
                              {{"cudl.format", "1"}, {"architecture", "[{\"type\":\"dense\",\"in\":3,\"out\":2}]"}});
  cudl::io::write_safetensors(dir + "/no_tensors.safetensors", {}, {{"k", "v"}});
  cudl::io::write_safetensors(dir + "/one_byte.safetensors", {{"b", DType::kU8, {1}, u8.data()}}, {});
  // Python's safetensors before 0.4: compact JSON, no padding, no metadata.
  put(dir + "/python_layout.safetensors",
      R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      std::vector<uint8_t>(16, 7));
  put(dir + "/doc_example.safetensors", R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})",
      std::vector<uint8_t>(16, 0));
  put(dir + "/overlap.safetensors",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::vector<uint8_t>(12, 1));
  put(dir + "/hole.safetensors",
      R"({"__metadata__":null,"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})",
      std::vector<uint8_t>(3, 1));
  put(dir + "/bad_crc.safetensors",
      R"({"__metadata__":{"cudl.crc32":"deadbeef"},"a":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}})",
      std::vector<uint8_t>(4, 3));
  return 0;
}
