#include "granite/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "granite/core/check.h"
#include "granite/tokenizer/bpe_tokenizer.h"
#include "granite/tokenizer/sentencepiece_tokenizer.h"

namespace granite {

std::vector<std::vector<TokenId>> Tokenizer::encode_batch(const std::vector<std::string>& texts, int threads,
                                                          const EncodeOptions& options) const {
  std::vector<std::vector<TokenId>> out(texts.size());
  size_t n = threads > 0 ? size_t(threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, std::max<size_t>(1, texts.size()));
  if (n <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], options);
    return out;
  }
  // Strided assignment keeps threads balanced when long texts cluster; the first error wins and is rethrown.
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(n);
  for (size_t t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (size_t i = t; i < texts.size(); i += n) out[i] = encode(texts[i], options);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (fs::is_directory(p)) {
    if (fs::exists(p / "tokenizer.json")) return BpeTokenizer::from_file((p / "tokenizer.json").string());
    if (fs::exists(p / "tokenizer.model")) return std::make_unique<SentencePieceTokenizer>((p / "tokenizer.model").string());
    GRANITE_FAIL(path, ": no tokenizer.json or tokenizer.model in this directory");
  }
  GRANITE_CHECK(fs::exists(p), path, ": no such tokenizer file");
  if (p.extension() == ".model") return std::make_unique<SentencePieceTokenizer>(path);
  return BpeTokenizer::from_file(path);
}

}  // namespace granite
