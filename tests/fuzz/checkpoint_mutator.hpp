#pragma once
// The checkpoint harness's custom mutator (fuzz_checkpoint.cpp, which describes it): format-aware
// mutations of a cudl safetensors file that keep most mutants past the length and CRC checks.
// Included once, by fuzz_checkpoint.cpp, inside its anonymous namespace's reach.
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "io/safetensors.hpp"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace cudl_fuzz_mutator {

using nlohmann::json;
using namespace cudl;

// ---------------------------------------------------------------------------------------------
// The custom mutator.

uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | p[b];
  return v;
}

// `text` mutated by libFuzzer's mutators (with room to grow by half, at least 64 bytes).
std::string mutate_text(std::string text) {
  const size_t size = text.size();
  text.resize(size + std::max<size_t>(64, size / 2));
  text.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(&text[0]), size, text.size()));
  return text;
}

// Every node of a JSON document, for picking one.
void collect(json& j, std::vector<json*>& nodes) {
  nodes.push_back(&j);
  if (j.is_structured())
    for (auto& child : j) collect(child, nodes);
}

// One change to one node of j: a value replaced (by a boundary number, a mutated string, another
// type), a key or element removed, an element duplicated.
void mutate_json(json& j, std::minstd_rand& rng) {
  std::vector<json*> nodes;
  collect(j, nodes);
  json& n = *nodes[rng() % nodes.size()];
  static const json kValues[] = {0, 1, -1, 2, 3, 255, 256, 65536, 2147483647, -2147483648LL, 4294967296LL,
                                 INT64_MAX, INT64_MIN, UINT64_MAX, 0.5, -0.0, 1e-45, 1e300, -1e300, true, false,
                                 nullptr, "", "0", "1", "-1", "2", "16", "1000000000000", "18446744073709551615",
                                 "18446744073709551616", "9223372036854775808", "1e39", "nan", "inf", "-0",
                                 " 1", "1 ", "0x10", "relu", "max", "average", "yes", "no", json::array(),
                                 json::object()};
  switch (rng() % 6) {
    case 0:
    case 1:
      n = kValues[rng() % (sizeof kValues / sizeof kValues[0])];
      break;
    case 2:
      if (n.is_string()) {
        n = mutate_text(n.get<std::string>());
      } else if (n.is_number()) {
        n = mutate_text(n.dump());  // a number turned into text, then maybe re-parsed below
        try {
          n = json::parse(n.get<std::string>());
        } catch (const json::exception&) {
        }
      }
      break;
    case 3:
      if (n.is_object() && !n.empty()) {
        auto it = n.begin();
        std::advance(it, static_cast<long>(rng() % n.size()));
        n.erase(it);
      } else if (n.is_array() && !n.empty()) {
        n.erase(n.begin() + static_cast<long>(rng() % n.size()));
      }
      break;
    case 4:
      if (n.is_array() && !n.empty()) {
        const json copy = n[rng() % n.size()];
        n.push_back(copy);
      } else if (n.is_object() && !n.empty()) {
        auto it = n.begin();
        std::advance(it, static_cast<long>(rng() % n.size()));
        const json copy = it.value();
        n[mutate_text(it.key())] = copy;  // the same value under a mutated key
      }
      break;
    default:
      if (n.is_number_integer()) {  // wrapping, in unsigned arithmetic
        n = static_cast<int64_t>(n.get<uint64_t>() + rng() % 5 - 2);
      } else if (n.is_boolean()) {
        n = !n.get<bool>();
      } else if (n.is_string()) {  // a numeric setting ± a little, or ×/÷ a lot
        try {
          const uint64_t v = static_cast<uint64_t>(std::stoll(n.get<std::string>()));
          const uint64_t changed[] = {v - 1, v + 1, v * 2, 0 - v, v * 1000, v / 2};
          n = std::to_string(static_cast<int64_t>(changed[rng() % 6]));
        } catch (const std::exception&) {
        }
      }
      break;
  }
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The header with its cudl.crc32 set to the data's CRC-32, when it has one and parses.
std::string with_crc(const std::string& header, const std::string& data) {
  try {
    json h = json::parse(header);
    if (!h.is_object() || !h.contains("__metadata__") || !h["__metadata__"].is_object() ||
        !h["__metadata__"].contains("cudl.crc32"))
      return header;
    char crc[16];
    const uLong value =
        crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    std::snprintf(crc, sizeof crc, "%08lx", value);
    h["__metadata__"]["cudl.crc32"] = crc;
    return dump(h);
  } catch (const json::exception&) {
    return header;
  }
}

// Recent inputs that were valid safetensors files, to restart from (see mutate_file).
std::vector<std::vector<uint8_t>> g_valid;
size_t g_valid_next = 0;

void remember_valid(const uint8_t* data, size_t size) {
  constexpr size_t kKeep = 256;
  if (g_valid.size() < kKeep) {
    g_valid.emplace_back(data, data + size);
  } else {
    g_valid[g_valid_next].assign(data, data + size);
    g_valid_next = (g_valid_next + 1) % kKeep;
  }
}

bool valid_file(const uint8_t* data, size_t size) {
  try {
    io::SafetensorsFile::parse(data, size, "mutant");
    return true;
  } catch (const Error&) {
    return false;
  }
}

size_t mutate_file(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  std::minstd_rand rng(seed);
  const unsigned mode = rng() % 100;
  if (mode < 5) return LLVMFuzzerMutate(data, size, max_size);  // bytes, as they come
  // Mutants of a broken file stay broken, and the corpus fills with them (each new refusal is new
  // coverage); three times in four, a broken file is swapped for a recent valid one.
  if (!g_valid.empty() && rng() % 4 != 0 && !valid_file(data, size)) {
    const std::vector<uint8_t>& v = g_valid[rng() % g_valid.size()];
    if (v.size() <= max_size) {
      std::memcpy(data, v.data(), v.size());
      size = v.size();
    }
  }
  if (size < 8 || read_u64(data) > size - 8) return LLVMFuzzerMutate(data, size, max_size);
  const size_t n = static_cast<size_t>(read_u64(data));
  std::string header(reinterpret_cast<const char*>(data) + 8, n);
  std::string body(reinterpret_cast<const char*>(data) + 8 + n, size - 8 - n);
  bool fix_crc = true;
  if (mode < 15) {  // the header as text
    header = mutate_text(header);
    fix_crc = rng() % 4 != 0;
  } else if (mode < 85) {  // one metadata value: as text, or as the JSON document it holds
    try {
      json h = json::parse(header);
      json& meta = h.at("__metadata__");
      if (!meta.is_object() || meta.empty()) return LLVMFuzzerMutate(data, size, max_size);
      auto it = meta.begin();
      std::advance(it, static_cast<long>(rng() % meta.size()));
      std::string value = it.value().is_string() ? it.value().get<std::string>() : dump(it.value());
      json inner;
      if (mode >= 35) inner = json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (mode < 35 || inner.is_discarded()) {  // not JSON (e.g. "format"): as text
        value = mutate_text(value);
      } else {
        const unsigned times = 1 + rng() % 3;
        for (unsigned i = 0; i < times; ++i) mutate_json(inner, rng);
        value = dump(inner);
      }
      it.value() = value;
      header = dump(h);
    } catch (const json::exception&) {
      return LLVMFuzzerMutate(data, size, max_size);
    }
  } else if (!body.empty()) {  // the data section's bytes, in place: the tensors' values
    const size_t m = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(&body[0]), body.size(), body.size());
    std::fill(body.begin() + static_cast<long>(m), body.end(), '\0');
  }
  if (fix_crc) header = with_crc(header, body);
  const size_t total = 8 + header.size() + body.size();
  if (total > max_size) return LLVMFuzzerMutate(data, size, max_size);
  for (int b = 0; b < 8; ++b) data[b] = static_cast<uint8_t>((uint64_t{header.size()} >> (8 * b)) & 0xff);
  std::memcpy(data + 8, header.data(), header.size());
  std::memcpy(data + 8 + header.size(), body.data(), body.size());
  return total;
}


}  // namespace cudl_fuzz_mutator
