// CPU-vs-CUDA parity of the batch-normalisation primitives (see cuda_parity.hpp for the rules):
// the GPU's float tree sums against the CPU's double sums, on shapes with ragged tails, one
// channel with a large M, and many channels with a small M. Skipped without a usable GPU.
#include "cuda_parity.hpp"

namespace {

struct BnShape {
  int64_t n, c, h, w;
};
const BnShape kBnShapes[] = {{2, 3, 5, 7}, {64, 1, 28, 28}, {3, 257, 1, 3}, {8, 64, 17, 17}};

}  // namespace

TEST_F(CudaParity, BatchNormTrainInferAndBackwardMatchTheCpu) {
  for (const BnShape& s : kBnShapes) {
    const Shape shape = {s.n, s.c, s.h, s.w};
    const int64_t n = numel(shape);
    const std::vector<float> xs = uniform_values(21, n, -3.0f, 5.0f), dys = uniform_values(22, n, -1.0f, 1.0f);
    const std::vector<float> gs = uniform_values(23, s.c, 0.5f, 2.0f), bs = uniform_values(24, s.c, -1.0f, 1.0f);
    const std::vector<float> rm = uniform_values(25, s.c, -1.0f, 1.0f), rv = uniform_values(26, s.c, 0.5f, 2.0f);
    std::vector<std::vector<float>> out[2];
    for (int d = 0; d < 2; ++d) {
      Backend& b = d == 0 ? static_cast<Backend&>(cpu) : gpu();
      Tensor x = Tensor::from_host(xs, shape, b), dy = Tensor::from_host(dys, shape, b);
      Tensor g = Tensor::from_host(gs, {s.c}, b), beta = Tensor::from_host(bs, {s.c}, b);
      Tensor mean = Tensor::from_host(rm, {s.c}, b), var = Tensor::from_host(rv, {s.c}, b);
      Tensor saved = Tensor::from_host(std::vector<float>(2 * s.c, kNaN), {2, s.c}, b);
      Tensor y = Tensor::from_host(std::vector<float>(n, kNaN), shape, b);
      Tensor yi = Tensor::from_host(std::vector<float>(n, kNaN), shape, b);
      Tensor dx = Tensor::from_host(std::vector<float>(n, kNaN), shape, b);
      Tensor dg = Tensor::from_host(std::vector<float>(s.c, kNaN), {s.c}, b);
      Tensor db = Tensor::from_host(std::vector<float>(s.c, kNaN), {s.c}, b);
      b.batch_norm_infer(x, g, beta, mean, var, 1e-5f, yi);
      b.batch_norm_train(x, g, beta, BatchNormArgs{}, mean, var, saved, y);
      b.batch_norm_backward(x, dy, g, saved, dx, dg, db);
      out[d] = {yi.to_vector(), y.to_vector(), saved.to_vector(), mean.to_vector(), var.to_vector(),
                dx.to_vector(), dg.to_vector(), db.to_vector()};
    }
    const char* names[] = {"infer y", "train y", "saved", "running mean", "running var", "dx", "dgamma", "dbeta"};
    const std::string where = str("shape", s.n, s.c, s.h) + "x" + std::to_string(s.w);
    for (int k = 0; k < 8; ++k) {
      // Sums of up to ~50,000 float terms: relative error of order 1e-5 against double sums.
      const bool sum = k == 6 || k == 7;
      expect_all_close(out[1][k], out[0][k], sum ? 2e-3 : 1e-4, sum ? 1e-4 : 1e-4, std::string(names[k]) + " " + where);
    }
  }
}
