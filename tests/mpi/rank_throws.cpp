// mpirun -np 2 rank_throws: rank 1 throws inside fit() (from its epoch callback) while rank 0
// goes on into its next collective. fit() must end the whole job through Communicator::abort,
// naming rank 1, instead of leaving rank 0 waiting forever (ctest gives it 60 s).
#include <memory>
#include <stdexcept>

#include "cudl/cpu_backend.hpp"
#include "cudl/mpi.hpp"
#include "cudl/trainer.hpp"
#include "test_support.hpp"

int main(int argc, char** argv) {
  cudl::mpi::Session session(&argc, &argv);
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
  cudl::fit(net, loss, opt, x, y, o);
  return 0;  // not reached: the job is aborted at epoch 2
}
