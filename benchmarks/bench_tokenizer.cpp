// Tokenizer throughput: encode a JSONL corpus ({"text": ...} per line) with 1..N threads, report MB/s and tokens/s,
// and (with --reference, ids written by tokenizer_hf_baseline.py) check every document's ids against HF.
//   bench_tokenizer TOKENIZER CORPUS.jsonl [REFERENCE.jsonl] [THREADS,THREADS,...]
// Prints one JSON line per measurement.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "granite/core/json.h"
#include "granite/tokenizer/tokenizer.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_tokenizer TOKENIZER CORPUS.jsonl [REFERENCE.jsonl|-] [THREADS,...]\n";
    return 2;
  }
  auto tok = granite::load_tokenizer(argv[1]);
  std::vector<std::string> texts;
  size_t bytes = 0;
  {
    std::ifstream in(argv[2]);
    for (std::string line; std::getline(in, line);) {
      texts.push_back(granite::Json::parse(line).at("text").get<std::string>());
      bytes += texts.back().size();
    }
  }
  std::vector<int> threads{1, 2, 4, 8, 16};
  if (argc > 4) {
    threads.clear();
    std::stringstream list(argv[4]);
    for (std::string t; std::getline(list, t, ',');) threads.push_back(std::stoi(t));
  }
  const double mb = double(bytes) / 1e6;
  std::cerr << "corpus: " << texts.size() << " documents, " << mb << " MB\n";

  // Cold single-thread pass (empty piece cache), then warm passes per thread count.
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok->encode_batch(texts, 1);
  double cold = seconds_since(t0);
  size_t tokens = 0;
  for (const auto& v : ids) tokens += v.size();
  std::cout << granite::Json{{"threads", 1}, {"cache", "cold"}, {"seconds", cold}, {"MB_per_s", mb / cold},
                             {"tokens_per_s", tokens / cold}, {"tokens", tokens}, {"bytes", bytes}}
                   .dump()
            << std::endl;
  for (int t : threads) {
    t0 = std::chrono::steady_clock::now();
    auto again = tok->encode_batch(texts, t);
    double s = seconds_since(t0);
    std::cout << granite::Json{{"threads", t}, {"cache", "warm"}, {"seconds", s}, {"MB_per_s", mb / s},
                               {"tokens_per_s", tokens / s}}
                     .dump()
              << std::endl;
  }

  if (argc > 3 && std::string(argv[3]) != "-") {  // parity with HF on the whole corpus
    std::ifstream ref(argv[3]);
    size_t doc = 0, mismatched = 0, first_bad = size_t(-1);
    for (std::string line; std::getline(ref, line); ++doc) {
      auto want = granite::Json::parse(line).at("ids").get<std::vector<granite::TokenId>>();
      if (doc >= ids.size() || ids[doc] != want) {
        ++mismatched;
        if (first_bad == size_t(-1)) first_bad = doc;
      }
    }
    std::cout << granite::Json{{"parity_documents", doc}, {"parity_mismatches", mismatched},
                               {"first_mismatch", first_bad == size_t(-1) ? -1 : int64_t(first_bad)}}
                     .dump()
              << std::endl;
    return mismatched == 0 && doc == ids.size() ? 0 : 1;
  }
  return 0;
}
