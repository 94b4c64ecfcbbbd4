// Collator + loader throughput: PackedLoader over prepared shards (granite-data prepare output) with one worker
// thread, batches converted to tensors on the consuming thread, for FIM rates 0 and 0.5. Reports tokens/s of wall
// time and tokens per CPU-second of the whole process (= per core: the worker does the work, the other threads wait).
//   bench_loader TOKENIZER DATA_DIR [SEQ_LEN=2048] [MICRO_BATCH=8] [TOKENS=50000000]
// One JSON line per FIM rate.
#include <sys/resource.h>

#include <chrono>
#include <iostream>

#include "granite/core/json.h"
#include "granite/data/packed_loader.h"
#include "granite/train/batch.h"

namespace {
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_loader TOKENIZER DATA_DIR [SEQ_LEN] [MICRO_BATCH] [TOKENS]\n";
    return 2;
  }
  const auto tokenizer = granite::load_tokenizer(argv[1]);
  const int64_t seq_len = argc > 3 ? std::stoll(argv[3]) : 2048;
  const int64_t micro_batch = argc > 4 ? std::stoll(argv[4]) : 8;
  const int64_t budget = argc > 5 ? std::stoll(argv[5]) : 50000000;
  for (double fim_rate : {0.0, 0.5}) {
    granite::LoaderConfig config;
    config.sources = {{"data", {argv[2]}, 1.0}};
    config.seq_len = seq_len;
    config.micro_batch = micro_batch;
    config.fim.rate = fim_rate;
    config.workers = 1;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    granite::PackedLoader loader(config, *tokenizer);
    int64_t tokens = 0, batches = 0;
    while (tokens < budget) {
      const granite::PackedBatch batch = loader.next();
      const granite::TrainBatch tensors = granite::to_tensors(batch);
      tokens += tensors.input_ids.numel();
      ++batches;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    const auto& fim = loader.state().fim;
    std::cout << granite::Json{{"fim_rate", fim_rate},
                               {"seq_len", seq_len},
                               {"micro_batch", micro_batch},
                               {"batches", batches},
                               {"tokens", tokens},
                               {"wall_s", wall},
                               {"cpu_s", cpu},
                               {"tokens_per_s", double(tokens) / wall},
                               {"tokens_per_cpu_s", double(tokens) / cpu},
                               {"fim_segments", fim.segments},
                               {"fim_permuted", fim.psm + fim.spm},
                               {"fim_unchanged_lossy", fim.unchanged_lossy}}
                     .dump()
              << std::endl;
  }
  return 0;
}
