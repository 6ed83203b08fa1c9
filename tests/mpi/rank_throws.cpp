// mpirun -np 2 rank_throws: rank 1 throws inside fit() (from its epoch callback) while rank 0
// goes on into its next collective. fit() must end the whole job through Communicator::abort,
// naming rank 1, instead of leaving rank 0 waiting forever (ctest gives it 60 s).
// mpirun -np 2 rank_throws --dataset: the same from fit() on a Dataset whose rows rank 1 cannot
// read, before the first collective (while the rows are put on the backend).
// mpirun -np 2 rank_throws --pretrain: DBN pretraining where rank 1's data holds a NaN (its
// check fails on rank 1 only, before any collective).
// mpirun -np 2 rank_throws --rbm-drift: an RBM whose update on rank 1 moves a weight a little
// (a faulty device): the check after the epoch ends the job naming rank 1.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/dbn.hpp"
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

// A CPU backend whose momentum step, where `drifts`, leaves one weight 1e-4 off.
class DriftsOnRank : public cudl::CpuBackend {
 public:
  explicit DriftsOnRank(bool drifts) : cudl::CpuBackend(1), drifts_(drifts) {}

 protected:
  void do_momentum_step(float* w, float* v, const float* g, int64_t n, const float* lr,
                        const cudl::MomentumArgs& args) override {
    cudl::CpuBackend::do_momentum_step(w, v, g, n, lr, args);
    if (drifts_) w[0] += 1e-4f;
  }

 private:
  bool drifts_;
};

// DBN pretraining (--pretrain) or one RBM epoch (--rbm-drift) on two ranks.
void pretrain(const std::string& mode, cudl::Communicator& world, const cudl::testing::Blobs& data) {
  DriftsOnRank cpu(mode == "--rbm-drift" && world.rank() == 1);
  std::vector<float> xs = data.x;
  if (mode == "--pretrain" && world.rank() == 1) xs[100] = std::nanf("");
  const cudl::Tensor x = cudl::Tensor::from_host(xs, {data.rows, 8}, cpu);
  if (mode == "--pretrain") {
    cudl::DbnConfig c;
    c.batch = 16;
    c.communicator = &world;
    cudl::DeepBeliefNet dbn(cpu, {8, 6, 2}, c);
    dbn.pretrain(x, 2);
  } else {
    cudl::RbmConfig c;
    c.visible = cudl::Units::kGaussian;
    c.batch = 16;
    c.communicator = &world;
    cudl::Rbm rbm(cpu, 8, 6, c);
    rbm.train_epoch(x, 1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  cudl::mpi::Session session(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool dataset = mode == "--dataset";
  std::unique_ptr<cudl::Communicator> world = session.world();
  cudl::CpuBackend cpu(1);
  const cudl::testing::Blobs data(256);
  if (mode == "--pretrain" || mode == "--rbm-drift") {
    pretrain(mode, *world, data);
    return 0;  // not reached: the job is aborted
  }
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
