#pragma once
// What fit() and Trainer do across ranks when a Communicator of more than one rank is given
// (docs/design/data-parallel.md): global loss statistics, rank 0's model on every rank, the
// layers' running state averaged, and the check that every rank holds the same parameters.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "cudl/communicator.hpp"
#include "cudl/error.hpp"
#include "cudl/loss.hpp"
#include "cudl/network.hpp"

namespace cudl::detail {

// Whether comm is there and has more than one rank.
inline bool several_ranks(const Communicator* comm) { return comm != nullptr && comm->size() > 1; }

// Throws Error ("<who>: rank R is not one of N ranks") unless 0 ≤ rank < ranks.
inline void require_rank(const char* who, int rank, int ranks) {
  CUDL_REQUIRE(ranks >= 1 && rank >= 0 && rank < ranks, std::string(who) + ": rank " + std::to_string(rank) +
                                                            " is not one of " + std::to_string(ranks) + " ranks");
}

// The totals of every rank's statistics: sums of the loss and errors; the first bad step is the
// lowest over the ranks (ties: the lowest rank), with that rank's value. Every rank gets the same.
LossTotals global_totals(Communicator& comm, const LossTotals& mine);

// Every rank's `mine` (the same length on every rank), rank 0's first, on every rank.
std::vector<float> every_ranks_values(Communicator& comm, const std::vector<float>& mine);

// Whether `mine` is true on any rank (every rank gets the same answer).
bool on_any_rank(Communicator& comm, bool mine);

// Every rank's parameters and layer state (BatchNorm's running statistics) ← rank 0's.
void broadcast_model(Communicator& comm, Network& net);

// Every layer's running state ← its mean over the ranks (each rank saw other batches).
void average_layer_state(Communicator& comm, Network& net);

// Throws Error naming the ranks whose parameters differ from rank 0's (a 64-bit hash of the
// bytes, compared exactly), after epoch `epoch`; the message starts with `who` ("fit", "Rbm").
// Every rank throws the same error.
void require_same_parameters(Communicator& comm, const Tensor& params, const std::string& who, int epoch);
inline void require_same_parameters(Communicator& comm, Network& net, int epoch) {
  require_same_parameters(comm, net.params(), "fit", epoch);
}

// Runs `run` and returns what it returns. With several ranks, an error that only this rank sees
// would leave the others waiting in their next collective, so it ends the job (comm->abort, which
// names the rank). A Diverged comes from figures every rank computes alike (global statistics, or
// the same parameters measured on the same rows): every rank throws it at the same point, so it
// stays an exception the caller can catch.
template <typename Run>
auto ending_the_job_on_error(Communicator* comm, Run&& run) -> decltype(run()) {
  if (!several_ranks(comm)) return run();
  try {
    return run();
  } catch (const Diverged&) {
    throw;
  } catch (const std::exception& e) {
    comm->abort(1, e.what());
  }
  std::abort();  // not reached: Communicator::abort does not return
}

}  // namespace cudl::detail
