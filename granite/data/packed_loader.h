#pragma once
// The packed, resumable training data loader shared by pretraining and (with its own sources) instruction tuning.
//
// Sequences. Each source is an endless token stream (token_stream.h). The k-th sequence a source gives covers its
// stream tokens [k * seq_len, k * seq_len + seq_len + 1): seq_len inputs and their seq_len next-token targets, the
// last token shared with the next sequence (Megatron's sample layout, so every token is a target once). Documents
// end with EOS and follow each other inside a sequence; a document may continue into the source's next sequence.
//
// Mixture. Global sequence g comes from the source whose share lags its weight most: argmax_s w_s * (g + 1) - n_s
// (n_s: sequences it gave so far; first source on ties) -- Megatron's blending rule, deterministic and exact to one
// sequence at every point, so phase 2's 80% code / 20% text holds within any window. Every token a source gives is
// counted (per objective) in the state.
//
// FIM. Each sequence goes through apply_fim (fim.h) with a generator derived from (seed, g): a sequence is a pure
// function of g, so resuming, re-sharding and parallel workers all give the same tokens.
//
// Ranks. Rank r of W takes the global sequences g = r, r + W, r + 2W, ... (every rank computes the same mixture), so
// a step's global batch is the same whatever W when the per-rank micro-batch times W is the same.
//
// Batches. Rows of input ids, next-token labels (-100 where ignored), each label's objective, position ids that
// restart at 0 after every EOS (each document sees positions from 0, as if alone) and segment ids numbering the
// documents of a row (for an attention mask that keeps documents apart: see granite/train/batch.h).
//
// State. state() after a batch is everything needed to continue after it exactly: the next global sequence, the
// mixture's counts and the token accounting. Batches are made ahead of time on background threads; the state
// reported is that of the last batch handed out, not of the prefetched ones.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "granite/core/json.h"
#include "granite/data/fim.h"
#include "granite/data/objective.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

struct DataSourceConfig {
  std::string name;                // for reports; defaults to the first path
  std::vector<std::string> paths;  // prepared directories or shard prefixes
  double weight = 1;               // relative; normalised over the sources
};

struct LoaderConfig {
  std::vector<DataSourceConfig> sources;
  int64_t seq_len = 2048;
  int64_t micro_batch = 1;  // rows per batch, per rank
  uint64_t seed = 42;
  bool shuffle = true;  // documents in a new order each epoch
  FimConfig fim;        // rate 0: no FIM
  int prefetch = 4;     // batches made ahead
  int workers = 1;      // threads making batches
};
// Strict JSON: {"sources": [{"name", "paths": [...] | "path", "weight"}], "seq_len", "micro_batch", "seed",
// "shuffle", "fim_rate", "fim_spm_rate", "prefetch", "workers"}; unknown keys are errors naming `where`.
LoaderConfig loader_config_from_json(const Json& j, const std::string& where);
Json to_json(const LoaderConfig& config);

struct SourceTokens {
  int64_t sequences = 0;            // sequences taken from the source (all ranks)
  int64_t clm = 0, fim = 0, ignored = 0;  // label tokens by objective, this rank's batches only
};

struct LoaderState {
  int64_t next_sequence = 0;           // the first global sequence not yet handed out (all ranks)
  std::vector<SourceTokens> sources;   // per source, in config order
  FimStats fim;                        // this rank's
  int64_t batches = 0;                 // this rank's
};
Json to_json(const LoaderState& state);
LoaderState loader_state_from_json(const Json& j, const std::string& where);

struct PackedBatch {
  int64_t rows = 0, seq_len = 0;
  std::vector<TokenId> input_ids;     // rows * seq_len
  std::vector<TokenId> labels;        // the next token, or -100 where the objective is kIgnore
  std::vector<Objective> objectives;  // of each label
  std::vector<int32_t> position_ids;  // restart at 0 after each EOS
  std::vector<int32_t> segment_ids;   // 0, 1, ... per document within the row
  std::vector<int64_t> sequences;     // global index of each row
  std::vector<int32_t> row_source;    // source of each row
  LoaderState state_after;            // the loader's state once this batch is consumed
};

class PackedLoader {
 public:
  // `state`: where to continue (default: the beginning). Checks the sources (they must exist and hold tokens) and
  // the FIM tokens up front. rank in [0, world).
  PackedLoader(LoaderConfig config, const Tokenizer& tokenizer, int rank = 0, int world = 1, LoaderState state = {});
  ~PackedLoader();
  PackedLoader(const PackedLoader&) = delete;
  PackedLoader& operator=(const PackedLoader&) = delete;

  PackedBatch next();
  const LoaderState& state() const { return state_; }
  const LoaderConfig& config() const { return config_; }
  // The number of tokens of one source's epoch (for reports and ETA).
  int64_t source_tokens_per_epoch(size_t source) const;

  struct Impl;

 private:
  LoaderConfig config_;
  LoaderState state_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace granite
