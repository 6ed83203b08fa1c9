#pragma once
// bench_dbn's command line.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cudl/device.hpp"
#include "cudl/trainer.hpp"

namespace bench {

struct Options {
  std::string device = "cpu";       // cpu | gpu
  std::string data;                 // --data DIR (empty: discovery)
  std::string json;                 // --json FILE
  int64_t max_data_mib = 1024;      // --max-data-mib N: the cap on the data as floats
  std::vector<int64_t> layers = {784, 800, 800, 10};
  double test_size = 0.33;
  bool learn_rate_given = false;    // otherwise chosen per dataset (see main)
  int threads = 0;                  // 0: all hardware threads
  cudl::Precision precision = cudl::Precision::kFp32;  // asked for; the backend says what it runs
  cudl::TrainConfig train;
  int pretrain_epochs = 0;             // 0: no pretraining (the 2014 run's default)
  float pretrain_learn_rate = 0.0f;    // 0: the fine-tuning learning rate
  float pretrain_momentum = -1.0f;     // < 0: the fine-tuning momentum
  std::string save;                    // --save FILE: the model, at the end
  std::string checkpoint;              // --checkpoint FILE: the run, every checkpoint_every epochs
  int checkpoint_every = 1;
  bool checkpoint_every_given = false;
  std::string resume;                  // --resume FILE
};

// Parses argv into *o. Returns nothing when the run goes on, else the status to exit with: 0
// after --help or --version, 2 after printing "bench_dbn: MESSAGE" (a bad flag or value, flags
// that do not go together).
std::optional<int> parse_options(int argc, char** argv, Options* o);

}  // namespace bench
