#include "support/real_code.h"

#include <map>
#include <memory>

#include "granite/data/document_source.h"
#include "granite/data/indexed_dataset.h"
#include "granite/data/packed_loader.h"
#include "support/paths.h"

namespace granite::test {

const Tokenizer& starcoder_tokenizer() {
  static const std::unique_ptr<Tokenizer> tokenizer =
      load_tokenizer(source_path("data/tokenizers/starcoder/tokenizer.json"));
  return *tokenizer;
}

const std::vector<std::string>& cpython_files(size_t max_bytes) {
  static std::map<size_t, std::vector<std::string>> cache;
  auto [it, inserted] = cache.try_emplace(max_bytes);
  if (inserted) {
    DocumentSource source({source_path("data/corpus/cpython-3.11-lib.tar.gz")});
    SourceDocument doc;
    while (source.next(doc))
      if (!doc.text.empty() && doc.text.size() < max_bytes) it->second.push_back(doc.text);
  }
  return it->second;
}

void write_code_shard(const std::string& dir, size_t max_bytes, size_t count) {
  const Tokenizer& tok = starcoder_tokenizer();
  IndexedDatasetWriter writer(dir + "/shard-00000", TokenDtype::UInt16);
  EncodeOptions plain;
  plain.parse_added_tokens = false;
  size_t n = 0;
  for (const std::string& text : cpython_files(max_bytes)) {
    if (n++ == count) break;
    auto ids = tok.encode(text, plain);
    ids.push_back(*tok.special_tokens().eos);
    writer.add_document(ids);
  }
  writer.finish();
}

std::vector<TrainBatch> code_batches(int n, int64_t rows, int64_t seq_len, double fim_rate) {
  static const std::string shards = [] {
    const std::string dir = process_scratch_dir("code_batches_shards");
    write_code_shard(dir, 20000, 40);
    return dir;
  }();
  LoaderConfig c;
  c.sources = {{"code", {shards}, 1.0}};
  c.seq_len = seq_len;
  c.micro_batch = rows;
  c.fim.rate = fim_rate;
  PackedLoader loader(c, starcoder_tokenizer());
  std::vector<TrainBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(to_tensors(loader.next()));
  return out;
}

}  // namespace granite::test
