#pragma once
// granite-data prepare: raw code repositories -> filtered, deduplicated, PII-redacted, tokenized shards, following
// the Granite Code paper's pipeline (§2). Three stages, each restartable:
//   scan       read every input document in order (document_source.h), identify its language (language_table.h),
//              apply the file filters (filters.h), drop exact duplicates (SHA-256), compute LSH band keys
//              (minhash.h), and stage the survivors on disk (doc_store.h)            [parallel over documents]
//   near-dedup cluster near duplicates (near_dedup.h) among the staged documents      [parallel over buckets]
//   tokenize   redact PII (pii.h), tokenize, append EOS, and write shards of about shard_bytes of text in Megatron's
//              .bin/.idx layout (indexed_dataset.h)                                  [parallel over documents]
// The output directory:
//   shard-NNNNN.bin / .idx  token shards; an .idx exists only for a complete shard (written last, atomically)
//   shard-NNNNN.json        the shard's documents, tokens, tokens by language, PII counts (written before its .idx)
//   dropped.jsonl           every dropped document: {"path", "reason"} (+ "duplicate_of", "similarity")
//   report.json             the run's summary, written last: its presence means the run is complete
//   .work/                  staging while the run is incomplete; settings.json there makes a rerun resume the same
//                           run (a different configuration, input list or tokenizer is refused, never mixed in)
// A rerun skips every stage whose completion marker exists and every shard whose .idx exists. A directory that is
// neither empty nor a granite-data output is refused, so nothing the user had is overwritten.
#include <string>
#include <vector>

#include "granite/core/json.h"
#include "granite/data/prepare_config.h"

namespace granite {

struct PrepareOptions {
  std::vector<std::string> inputs;  // directories, archives, .jsonl files, single files
  std::string output;
  std::string tokenizer;            // tokenizer.json, a sentencepiece .model, or a model directory
  PrepareConfig config;
  int threads = 0;                  // 0: hardware concurrency
  bool progress = true;             // progress lines on stderr
};

// Runs the preparation, or resumes it; returns the report that is in <output>/report.json.
Json prepare_dataset(const PrepareOptions& options);

}  // namespace granite
