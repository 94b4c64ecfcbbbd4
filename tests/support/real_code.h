#pragma once
// Real inputs shared by the data tests: the StarCoder tokenizer the project ships, and the Python files of the
// CPython 3.11 standard-library excerpt in data/corpus/ (real code, some of it non-ASCII). Loaded once per run.
#include <string>
#include <vector>

#include "granite/tokenizer/tokenizer.h"
#include "granite/train/batch.h"

namespace granite::test {

const Tokenizer& starcoder_tokenizer();
// The corpus files under `max_bytes`, in archive order.
const std::vector<std::string>& cpython_files(size_t max_bytes = 200000);
// The first `count` of those files tokenized (plain text, EOS after each, as granite-data prepare writes them) into
// one token shard `<dir>/shard-00000` (dir must exist).
void write_code_shard(const std::string& dir, size_t max_bytes, size_t count);
// The first `n` training batches (rows x seq_len, FIM at fim_rate) of the loader over a shard of 40 such files
// (written once per process), as CPU tensors: real packed code for the training tests.
std::vector<TrainBatch> code_batches(int n, int64_t rows, int64_t seq_len = 64, double fim_rate = 0.5);

}  // namespace granite::test
