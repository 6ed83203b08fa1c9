// The CPU's elementwise passes in each instruction set this CPU supports (cpu/elementwise.hpp):
// every kind gives the baseline's results bit for bit, on odd lengths and misaligned starts that
// leave vector remainders, and on NaN, infinities, signed zeros and subnormals. Kinds the CPU
// lacks are skipped with the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cpu/elementwise.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/error.hpp"
#include "test_support.hpp"

using namespace cudl;
using cpu::ElementwiseKernel;
using cpu::ElementwiseOps;
using ::testing::HasSubstr;

namespace {

constexpr ElementwiseKernel kKinds[] = {ElementwiseKernel::kBaseline, ElementwiseKernel::kAvx2,
                                        ElementwiseKernel::kAvx512};

// Lengths around every vector width (4, 8, 16 floats), and one long run.
constexpr int64_t kLengths[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099};
// Starts 0..3 floats past a 64-byte boundary: aligned and misaligned loads and stores.
constexpr int64_t kOffsets[] = {0, 1, 3};

// n values in [lo, hi) (their own random stream), with every special value sprinkled in.
std::vector<float> values(int64_t n, uint64_t seed, float lo = -4.0f, float hi = 4.0f) {
  std::vector<float> v = cudl::testing::uniform_values(seed, n, lo, hi, /*stream=*/11);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 0.0f, -0.0f,
                            std::numeric_limits<float>::denorm_min(), -1e-40f, 1e30f, -1e30f};
  for (int64_t i = static_cast<int64_t>(seed % 5); i < n; i += 13) v[i] = specials[(i / 13) % 9];
  return v;
}

// Bitwise equality: NaN payloads and signed zeros must match too.
void expect_bits_equal(const std::vector<float>& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", the baseline gives " << want[i];
      return;
    }
  }
}

// Runs `pass` on fresh arrays with the baseline and with `kind`, for every length and offset, and
// compares every array it may have written. `pass` gets the ops, the arrays and their length.
using Arrays = std::vector<std::vector<float>>;
void compare(ElementwiseKernel kind, int arrays, const std::function<void(const ElementwiseOps&, float**, int64_t)>& pass,
             const std::string& name) {
  for (int64_t n : kLengths) {
    for (int64_t offset : kOffsets) {
      Arrays base, mine;
      for (int a = 0; a < arrays; ++a) {
        base.push_back(values(n + offset, 100 * static_cast<uint64_t>(n) + static_cast<uint64_t>(a)));
      }
      mine = base;
      std::vector<float*> pb, pm;
      for (int a = 0; a < arrays; ++a) {
        pb.push_back(base[a].data() + offset);
        pm.push_back(mine[a].data() + offset);
      }
      pass(cpu::elementwise_ops(ElementwiseKernel::kBaseline), pb.data(), n);
      pass(cpu::elementwise_ops(kind), pm.data(), n);
      for (int a = 0; a < arrays; ++a) {
        expect_bits_equal(base[a], mine[a],
                          name + " array " + std::to_string(a) + ", n " + std::to_string(n) + ", offset " +
                              std::to_string(offset));
      }
    }
  }
}

class Elementwise : public ::testing::TestWithParam<ElementwiseKernel> {
 protected:
  void SetUp() override {
    std::string why;
    if (!cpu::elementwise_kernel_supported(GetParam(), &why)) GTEST_SKIP() << why;
  }
};

constexpr Activation kActivations[] = {Activation::kIdentity, Activation::kRelu, Activation::kSigmoid};

TEST_P(Elementwise, ActivationsAndTheirGradientsEqualTheBaseline) {
  for (Activation act : kActivations) {
    const std::string name = "activation " + std::to_string(static_cast<int>(act));
    compare(GetParam(), 1, [act](const ElementwiseOps& ops, float** p, int64_t n) { ops.activation(p[0], n, act); },
            name);
    compare(GetParam(), 1,
            [act](const ElementwiseOps& ops, float** p, int64_t n) { ops.add_activate(p[0], n, -0.75f, act); },
            "add_activate " + name);
    compare(GetParam(), 2,
            [act](const ElementwiseOps& ops, float** p, int64_t n) { ops.activation_backward(p[0], p[1], n, act); },
            "activation_backward " + name);
    // bias_activation over rows of n columns: three rows, the bias array being the second.
    compare(GetParam(), 2,
            [act](const ElementwiseOps& ops, float** p, int64_t n) {
              const int64_t cols = n / 3;
              if (cols > 0) ops.bias_activation(p[0], p[1], 3, cols, act);
            },
            "bias_activation " + name);
  }
}

TEST_P(Elementwise, AxpyEqualsTheBaseline) {
  compare(GetParam(), 2, [](const ElementwiseOps& ops, float** p, int64_t n) { ops.axpy(-0.3f, p[0], p[1], n); },
          "axpy");
}

TEST_P(Elementwise, OptimizerUpdatesEqualTheBaseline) {
  compare(GetParam(), 3,
          [](const ElementwiseOps& ops, float** p, int64_t n) { ops.nesterov(p[0], p[1], p[2], n, 0.3f, 0.9f, 1.0f / 64, 1e-4f); },
          "nesterov");
  compare(GetParam(), 3,
          [](const ElementwiseOps& ops, float** p, int64_t n) {
            ops.rbm_momentum(p[0], p[1], p[2], n, 0.01f, 0.5f, 1.0f / 64, 2e-4f);
          },
          "rbm_momentum");
  SgdArgs sgd;
  sgd.momentum = 0.9f;
  sgd.dampening = 0.1f;
  sgd.nesterov = true;
  for (bool first : {true, false}) {
    compare(GetParam(), 3,
            [&](const ElementwiseOps& ops, float** p, int64_t n) { ops.sgd(p[0], p[1], p[2], n, 0.05f, sgd, 1e-3f, first); },
            "sgd with momentum");
    compare(GetParam(), 2,
            [&](const ElementwiseOps& ops, float** p, int64_t n) {
              ops.sgd(p[0], nullptr, p[1], n, 0.05f, SgdArgs{}, 1e-3f, first);
            },
            "plain sgd");
  }
  for (bool decoupled : {false, true}) {
    for (bool amsgrad : {false, true}) {
      AdamArgs adam;
      adam.weight_decay = 1e-2f;
      adam.decoupled = decoupled;
      adam.amsgrad = amsgrad;
      const formulas::AdamScalars s = formulas::adam_scalars(1e-3f, adam, 7);
      compare(GetParam(), 5,
              [&](const ElementwiseOps& ops, float** p, int64_t n) {
                // Second moments are non-negative, as the optimizer keeps them.
                for (int64_t i = 0; i < n; ++i) {
                  p[2][i] = std::fabs(p[2][i]);
                  p[3][i] = std::fabs(p[3][i]);
                }
                ops.adam(p[0], p[1], p[2], amsgrad ? p[3] : nullptr, p[4], n, adam, s, /*decay=*/true);
              },
              std::string("adam") + (decoupled ? "w" : "") + (amsgrad ? " amsgrad" : ""));
    }
  }
}

std::string kind_name(const ::testing::TestParamInfo<ElementwiseKernel>& info) {
  return cpu::to_string(info.param);
}

INSTANTIATE_TEST_SUITE_P(Kinds, Elementwise, ::testing::ValuesIn(kKinds), kind_name);

// The widest kind the CPU supports is chosen, and the backend names it.
TEST(ElementwiseChoice, TheWidestSupportedKindIsChosenAndNamed) {
  ElementwiseKernel widest = ElementwiseKernel::kBaseline;
  for (ElementwiseKernel k : kKinds) {
    if (cpu::elementwise_kernel_supported(k)) widest = k;
  }
  EXPECT_EQ(cpu::choose_elementwise_kernel(nullptr), widest);
  EXPECT_EQ(cpu::choose_elementwise_kernel(""), widest);
  const char* env = std::getenv("CUDL_ELEMENTWISE_KERNEL");
  const ElementwiseKernel chosen = env != nullptr && *env != '\0' ? cpu::choose_elementwise_kernel(env) : widest;
  EXPECT_EQ(cpu::elementwise_kernel(), chosen);
  EXPECT_THAT(CpuBackend(1).describe(), HasSubstr(std::string(", elementwise ") + cpu::to_string(chosen)));
}

TEST(ElementwiseChoice, TheEnvironmentPicksAKindOrIsRefusedByName) {
  EXPECT_EQ(cpu::choose_elementwise_kernel("baseline"), ElementwiseKernel::kBaseline);
  EXPECT_THAT(cudl::testing::error_of([] { cpu::choose_elementwise_kernel("avx1024"); }),
              HasSubstr("CUDL_ELEMENTWISE_KERNEL=avx1024: expected baseline, avx2 or avx512"));
  for (ElementwiseKernel k : {ElementwiseKernel::kAvx2, ElementwiseKernel::kAvx512}) {
    if (cpu::elementwise_kernel_supported(k)) {
      EXPECT_EQ(cpu::choose_elementwise_kernel(cpu::to_string(k)), k);
    } else {
      EXPECT_THAT(cudl::testing::error_of([k] { cpu::choose_elementwise_kernel(cpu::to_string(k)); }),
                  HasSubstr("does not support"));
      EXPECT_THAT(cudl::testing::error_of([k] { cpu::elementwise_ops(k); }), HasSubstr("does not support"));
    }
  }
}

}  // namespace
