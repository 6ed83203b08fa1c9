// Data-parallel training in a user's program (run as mpirun -np 2 mpi_consumer): two classes of
// points, a small MLP, 8 rows per rank per step. Rank 0 prints the global report.
#include <cudl/cudl.hpp>
#include <cudl/mpi.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  cudl::mpi::Session mpi(&argc, &argv);
  std::unique_ptr<cudl::Communicator> world = mpi.world();
  cudl::CpuBackend cpu(1);
  std::vector<float> xs, ys;
  for (int i = 0; i < 256; ++i) {
    const float label = static_cast<float>(i % 2);
    xs.push_back(label - 0.5f + 0.01f * static_cast<float>(i % 7));
    xs.push_back(0.5f - label + 0.01f * static_cast<float>(i % 5));
    ys.push_back(label);
  }
  const cudl::Tensor x = cudl::Tensor::from_host(xs, {256, 2}, cpu);
  const cudl::Tensor y = cudl::Tensor::from_host(ys, {256}, cpu);
  cudl::Network net(cpu, {2});
  net.add(cudl::dense(8, cudl::Activation::kRelu)).add(cudl::dense(2));
  net.initialize(1, 0.5f);
  const cudl::SoftmaxCrossEntropy loss;
  cudl::Sgd opt(net.param_set(), cudl::SgdOptions{});
  cudl::FitOptions o;
  o.epochs = 5;
  o.batch = 8;
  o.progress = cudl::Progress::kNone;
  o.communicator = world.get();
  const cudl::History h = cudl::fit(net, loss, opt, x, y, o);
  if (world->rank() == 0)
    std::printf("ranks %d: %lld steps per epoch, last loss %.4f, error %.3f\n", world->size(),
                static_cast<long long>(h.epochs.back().steps), h.epochs.back().loss, h.epochs.back().err);
  return 0;
}
