#include "nn/data_parallel.hpp"

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cudl/error.hpp"

namespace cudl::detail {

LossTotals global_totals(Communicator& comm, const LossTotals& mine) {
  const int size = comm.size();
  LossTotals all;
  double sums[2] = {mine.loss_sum, mine.errors};
  comm.all_reduce(sums, 2, ReduceOp::kSum);
  all.loss_sum = sums[0];
  all.errors = sums[1];
  // The lowest bad step and, among the ranks that have it, the lowest rank: step·size + rank is
  // exact in a double for any realistic step count (< 2^53 / size).
  const double none = std::numeric_limits<double>::infinity();
  double key = mine.bad_step >= 0 ? static_cast<double>(mine.bad_step) * size + comm.rank() : none;
  comm.all_reduce(&key, 1, ReduceOp::kMin);
  if (key == none) return all;
  const int owner = static_cast<int>(static_cast<int64_t>(key) % size);
  all.bad_step = static_cast<int64_t>(key) / size;
  double value = mine.bad_value;
  comm.broadcast(&value, 1, owner);
  all.bad_value = value;
  return all;
}

std::vector<float> every_ranks_values(Communicator& comm, const std::vector<float>& mine) {
  // Each rank writes its values into its own slots of a zeroed array; the sum gives all (exact:
  // floats in doubles, added to zeros).
  const size_t n = mine.size();
  std::vector<double> all(n * static_cast<size_t>(comm.size()), 0.0);
  for (size_t i = 0; i < n; ++i) all[n * static_cast<size_t>(comm.rank()) + i] = mine[i];
  comm.all_reduce(all.data(), static_cast<int64_t>(all.size()), ReduceOp::kSum);
  return std::vector<float>(all.begin(), all.end());
}

bool on_any_rank(Communicator& comm, bool mine) {
  double v = mine ? 1.0 : 0.0;
  comm.all_reduce(&v, 1, ReduceOp::kMax);
  return v != 0.0;
}

namespace {

template <typename F>
void for_each_state(Network& net, F&& f) {
  for (int64_t i = 0; i < net.num_layers(); ++i)
    for (auto& [name, tensor] : net.layer(i).state())
      if (tensor != nullptr && !tensor->empty()) f(*tensor);
}

// FNV-1a over the bytes of the floats.
uint64_t hash_of(const std::vector<float>& v) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

void broadcast_model(Communicator& comm, Network& net) {
  comm.broadcast(net.params(), 0);
  for_each_state(net, [&](Tensor& t) { comm.broadcast(t, 0); });
}

void average_layer_state(Communicator& comm, Network& net) {
  for_each_state(net, [&](Tensor& t) { comm.all_reduce_mean(t); });
}

void require_same_parameters(Communicator& comm, const Tensor& params, const std::string& who, int epoch) {
  const int size = comm.size();
  const uint64_t h = hash_of(params.to_vector());
  // Each rank writes its hash, as two exact 32-bit halves, into its own slots; the sum gives all.
  std::vector<double> hashes(2 * static_cast<size_t>(size), 0.0);
  hashes[2 * comm.rank()] = static_cast<double>(h >> 32);
  hashes[2 * comm.rank() + 1] = static_cast<double>(h & 0xffffffffu);
  comm.all_reduce(hashes.data(), static_cast<int64_t>(hashes.size()), ReduceOp::kSum);
  std::string differ;
  for (int r = 1; r < size; ++r) {
    if (hashes[2 * r] != hashes[0] || hashes[2 * r + 1] != hashes[1])
      differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!differ.empty())
    throw Error(who + ": after epoch " + std::to_string(epoch) + " the parameters of rank" +
                (differ.find(',') == std::string::npos ? " " : "s ") + differ +
                " differ from rank 0's: the ranks no longer train one model (a rank that skipped a step, or "
                "an all-reduce that did not reach every rank)");
}

}  // namespace cudl::detail
