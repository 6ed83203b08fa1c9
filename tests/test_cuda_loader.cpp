// The streamed data path on the GPU (issue 21): uploads from page-locked host memory on a second
// stream, ordered by events; fit() streaming a Dataset through them trains bit for bit as fit() on
// the same rows resident on the GPU (the same kernels see the same batches; only where the batch
// comes from differs), with the step captured as a CUDA graph and without. Skipped, with the
// reason, without a usable GPU.
#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "cuda_parity.hpp"
#include "cudl/dataset.hpp"
#include "cudl/trainer.hpp"

TEST_F(CudaParity, UploadsOnTheCopyQueueAreOrderedByEvents) {
  ASSERT_TRUE(gpu().async_uploads());
  const int64_t n = 1 << 20;  // 4 MB: long enough for a missing wait to show
  auto* host = static_cast<float*>(gpu().allocate_host(sizeof(float) * n));
  ASSERT_NE(host, nullptr);
  Tensor staged({n}, gpu()), copied({n}, gpu());
  const auto uploaded = gpu().create_event(), consumed = gpu().create_event();
  // The tensors are allocated in the compute queue's order: the copy queue waits for that first.
  gpu().record(*consumed, Backend::Queue::kCompute);
  for (int round = 0; round < 4; ++round) {
    for (int64_t i = 0; i < n; ++i) host[i] = static_cast<float>(round * n + i);
    gpu().wait(Backend::Queue::kCopy, *consumed);
    gpu().upload_async(host, staged.data(), sizeof(float) * n);
    gpu().record(*uploaded, Backend::Queue::kCopy);
    gpu().wait(Backend::Queue::kCompute, *uploaded);
    gpu().copy(staged.data(), copied.data(), sizeof(float) * n);
    gpu().record(*consumed, Backend::Queue::kCompute);
    gpu().host_wait(*uploaded);  // the host buffer may be rewritten now
    const std::vector<float> got = copied.to_vector();
    ASSERT_EQ(got[0], static_cast<float>(round * n)) << "round " << round;
    ASSERT_EQ(got[static_cast<size_t>(n - 1)], static_cast<float>(round * n + n - 1)) << "round " << round;
  }
  gpu().deallocate_host(host);
  EXPECT_EQ(gpu().allocate_host(0), nullptr);
}

TEST_F(CudaParity, HostStagingIsPageLockedReusedAndGrown) {
  EXPECT_EQ(gpu().host_staging(0), nullptr);
  void* first = gpu().host_staging(4096);
  ASSERT_NE(first, nullptr);
  unsigned int flags = 0;
  EXPECT_EQ(cudaHostGetFlags(&flags, first), cudaSuccess) << "not page-locked memory of the CUDA runtime";
  EXPECT_EQ(gpu().host_staging(100), first);
  void* grown = gpu().host_staging(size_t{8} << 20);
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(cudaHostGetFlags(&flags, grown), cudaSuccess);
  // A round trip through it, as MpiCommunicator makes one.
  const std::vector<float> v(1 << 20, 2.5f);
  Tensor t = Tensor::from_host(v, {1 << 20}, gpu());
  gpu().copy_to_host(t.data(), grown, v.size() * sizeof(float));
  EXPECT_EQ(static_cast<float*>(grown)[12345], 2.5f);
  static_cast<float*>(grown)[12345] = -1.0f;
  gpu().copy_from_host(grown, t.data(), v.size() * sizeof(float));
  EXPECT_EQ(t.to_vector()[12345], -1.0f);
}

TEST_F(CudaParity, StreamedFitTrainsBitForBitAsResidentOnTheGpu) {
  const InMemoryDataset all = cudl::testing::Blobs(1000).dataset();
  const DatasetSplit parts = random_split(all, 0.2, 5);
  const auto train = [&](DataPath path, StepLaunch launch, int threads, History* h) {
    Network net(gpu(), {8});
    net.add(dense(16, Activation::kRelu)).add(dense(2));
    net.initialize(1, 0.1f);
    Sgd opt(net.param_set(), SgdOptions{0.05f, 0.9f});
    FitOptions o;
    o.epochs = 3;
    o.batch = 32;
    o.progress = Progress::kNone;
    o.data_path = path;
    o.launch = launch;
    o.prefetch = 3;
    o.loader_threads = threads;
    o.validation_data = &parts.valid;
    *h = fit(net, SoftmaxCrossEntropy(), opt, parts.train, o);
    return net.params().to_vector();
  };
  for (StepLaunch launch : {StepLaunch::kAuto, StepLaunch::kEager}) {
    const std::string what = launch == StepLaunch::kAuto ? "captured" : "eager";
    History resident_h, streamed_h, inline_h;
    const std::vector<float> resident = train(DataPath::kResident, launch, 2, &resident_h);
    EXPECT_EQ(train(DataPath::kStreamed, launch, 2, &streamed_h), resident) << what;
    EXPECT_EQ(train(DataPath::kStreamed, launch, 0, &inline_h), resident) << what << ", filled on the training thread";
    EXPECT_EQ(streamed_h.epochs.back().loss, resident_h.epochs.back().loss) << what;
    EXPECT_EQ(streamed_h.epochs.back().valid_loss, resident_h.epochs.back().valid_loss) << what;
    EXPECT_THAT(resident_h.data_path, HasSubstr("resident on cuda"));
    EXPECT_THAT(streamed_h.data_path, HasSubstr("uploaded on a second queue"));
  }
}
