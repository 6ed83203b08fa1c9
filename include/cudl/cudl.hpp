#pragma once
// The whole public API of cudl. No CUDA or Eigen header is included from here.
#include "cudl/backend.hpp"
#include "cudl/cpu_backend.hpp"
#include "cudl/data.hpp"
#include "cudl/device.hpp"
#include "cudl/error.hpp"
#include "cudl/layers.hpp"
#include "cudl/metrics.hpp"
#include "cudl/network.hpp"
#include "cudl/optimizer.hpp"
#include "cudl/rng.hpp"
#include "cudl/tensor.hpp"
#include "cudl/trainer.hpp"
