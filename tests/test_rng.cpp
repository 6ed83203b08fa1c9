#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "cudl/rng.hpp"

using namespace cudl::rng;

// Known-answer vectors of Philox-4x32-10 from Random123 (kat_vectors).
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const auto& k : kats) {
    const Philox4 r = philox4x32(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out.v[i]) << "word " << i;
  }
}

TEST(Philox, DrawsDependOnSeedStreamAndCounter) {
  const Philox4 a = bits(1, 0, 0), b = bits(2, 0, 0), c = bits(1, 1, 0), d = bits(1, 0, 1);
  EXPECT_NE(a.v[0], b.v[0]);
  EXPECT_NE(a.v[0], c.v[0]);
  EXPECT_NE(a.v[0], d.v[0]);
  EXPECT_EQ(a.v[0], bits(1, 0, 0).v[0]);  // stateless: same inputs, same draw
}

TEST(Uniform, StaysInOpenZeroClosedOne) {
  EXPECT_GT(uniform(0u), 0.0f);
  EXPECT_LE(uniform(0xffffffffu), 1.0f);
  EXPECT_FLOAT_EQ(uniform(0xffffffffu), 1.0f);
}

TEST(Below, IsUniformOverSmallRange) {
  // 7 bins, 70,000 draws: each bin's count within 5 standard deviations of 10,000.
  std::vector<int> count(7, 0);
  for (uint64_t i = 0; i < 70000; ++i) {
    const uint32_t k = below(bits(42, 0, i).v[0], 7);
    ASSERT_LT(k, 7u);
    ++count[k];
  }
  const double sd = std::sqrt(70000.0 * (1.0 / 7) * (6.0 / 7));
  for (int c : count) EXPECT_NEAR(c, 10000, 5 * sd);
}

TEST(Normal, HasZeroMeanAndUnitVariance) {
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const Philox4 r = bits(7, kStreamInit, static_cast<uint64_t>(i));
    const double z = normal(r.v[0], r.v[1]);
    ASSERT_TRUE(std::isfinite(z));
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 0.05);  // a normal's fourth moment
}
