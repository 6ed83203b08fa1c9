// mpirun -np 2 rank_throws: rank 1 throws inside fit() (from its epoch callback) while rank 0
// goes on into its next collective. fit() must end the whole job through Communicator::abort,
// naming rank 1, instead of leaving rank 0 waiting forever (ctest gives it 60 s).
// mpirun -np 2 rank_throws --dataset: the same from fit() on a Dataset whose rows rank 1 cannot
// read, before the first collective (while the rows are put on the backend).
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/mpi.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

namespace {

// The blobs; on rank 1 every read fails.
class FailsOnRankOne : public cudl::InMemoryDataset {
 public:
  explicit FailsOnRankOne(int rank) : rank_(rank) {}
  void fill(const int64_t* idx, int64_t n, float* xs, float* ys) const override {
    if (rank_ == 1) throw cudl::Error("rows.bin: a failure on one rank only");
    cudl::InMemoryDataset::fill(idx, n, xs, ys);
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  cudl::mpi::Session session(&argc, &argv);
  const bool dataset = argc > 1 && std::strcmp(argv[1], "--dataset") == 0;
  std::unique_ptr<cudl::Communicator> world = session.world();
  cudl::CpuBackend cpu(1);
  const cudl::testing::Blobs data(256);
  const cudl::Tensor x = data.x_on(cpu), y = data.y_on(cpu);
  cudl::Network net(cpu, {8});
  net.add(cudl::dense(2));
  net.initialize(1, 0.1f);
  const cudl::SoftmaxCrossEntropy loss;
  cudl::Sgd opt(net.param_set(), cudl::SgdOptions{});
  cudl::FitOptions o;
  o.epochs = 1000;
  o.batch = 16;
  o.communicator = world.get();
  o.progress = cudl::Progress::kNone;
  o.on_epoch = [&](const cudl::EpochReport& e) {
    if (e.epoch == 2 && world->rank() == 1) throw std::runtime_error("a failure on one rank only");
  };
  if (dataset) {
    FailsOnRankOne rows(world->rank());
    rows.rows = data.rows;
    rows.features = 8;
    rows.classes = 2;
    rows.x = data.x;
    rows.y = data.y;
    cudl::fit(net, loss, opt, rows, o);
  } else {
    cudl::fit(net, loss, opt, x, y, o);
  }
  return 0;  // not reached: the job is aborted at epoch 2
}
