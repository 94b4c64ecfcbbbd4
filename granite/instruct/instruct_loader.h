#pragma once
// Instruction-tuning batches: conversations rendered with the chat template, tokenized piece by piece, labels only
// on the answers (and their EOS), several datasets mixed by weight, packed into rows or padded per micro-batch.
//
// Examples. Each record becomes tokens x_0..x_{n-1} (no BOS) with a trained flag per token; as a training row it
// takes n-1 positions: inputs x_0..x_{n-2}, labels x_1..x_{n-1}, a label kept (objective CLM) only where its token
// is trained, -100 elsewhere. An example longer than seq_len + 1 tokens is an error naming its file and line (or,
// with skip_invalid, counted and left out).
// Split. With eval_fraction f, a record goes to the validation split when a hash of (seed, dataset, record) falls
// below f: the split is fixed by the seed and never changes with the weights, the world size or the order.
// Mixture. Example k of the stream comes from the dataset whose share lags its weight most (the rule of the
// pretraining loader); each dataset goes through its records in a new seeded order every epoch.
// Rows. packing: examples follow each other in a row while they fit (never split), each with positions from 0 and
// its own segment (the document mask keeps examples apart, so one example's loss does not depend on its
// neighbours); the rest of a row is padding (EOS ids, no loss). No packing: one example per row, and rows are made
// from windows of 16 global batches sorted by length (length bucketing), each micro-batch padded to its longest row.
// Ranks. Rank r of W takes rows r, r + W, ... of the global row stream; state() counts global rows, so a run resumes
// on any W with the same micro-batch x W.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "granite/instruct/chat_template.h"
#include "granite/instruct/instruct_records.h"
#include "granite/tokenizer/tokenizer.h"
#include "granite/train/batch_source.h"

namespace granite {

struct InstructDatasetConfig {
  std::string path;  // .jsonl or .json
  double weight = 1;
};

struct InstructDataConfig {
  std::vector<InstructDatasetConfig> datasets;
  int64_t seq_len = 2048;
  int64_t micro_batch = 1;  // rows per batch, per rank
  bool packing = true;
  uint64_t seed = 42;
  double eval_fraction = 0;  // held-out share of the records
  bool skip_invalid = false;  // bad records and over-long examples: counted and left out instead of an error
};
// Strict JSON {"datasets": [{"path", "weight"}], "seq_len", "micro_batch", "packing", "seed", "eval_fraction",
// "skip_invalid"}; paths resolved against `base`.
InstructDataConfig instruct_data_config_from_json(const Json& j, const std::string& where, const std::string& base);
Json to_json(const InstructDataConfig& c);

// A tokenized example: tokens and which of them are trained.
struct InstructExample {
  std::vector<TokenId> tokens;
  std::vector<uint8_t> trained;
};
InstructExample tokenize_conversation(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                      const std::vector<ChatMessage>& messages);

struct InstructLoaderState {
  int64_t next_example = 0;          // examples taken from the mixture (all ranks)
  std::vector<int64_t> taken;        // per dataset
  int64_t next_row = 0;              // global rows handed out
  int64_t window_start = 0;          // no packing: the example that opens the current window
};
Json to_json(const InstructLoaderState& s);
InstructLoaderState instruct_loader_state_from_json(const Json& j, const std::string& where);

enum class InstructSplit { kTrain, kEval };

// Every dataset of a config read, checked and tokenized once (errors name the record), each record in the training
// or the validation split: what the training loader, the validation batches and the epoch count share.
class InstructExamples {
 public:
  InstructExamples(const InstructDataConfig& config, const ChatTemplate& tmpl, const Tokenizer& tokenizer);
  const InstructDataConfig& config() const { return config_; }
  TokenId pad() const { return pad_; }
  // Per dataset, in file order.
  const std::vector<std::vector<InstructExample>>& split(InstructSplit s) const { return examples_[size_t(s)]; }
  // Records left out (skip_invalid): the invalid ones, and this split's examples longer than the context.
  int64_t skipped(InstructSplit s) const { return invalid_ + too_long_[size_t(s)]; }

 private:
  InstructDataConfig config_;
  TokenId pad_ = 0;
  std::vector<std::vector<InstructExample>> examples_[2];
  int64_t invalid_ = 0, too_long_[2] = {0, 0};
};

class InstructLoader : public BatchSource {
 public:
  using Split = InstructSplit;
  // `split` of the shared examples, rows for `rank` of `world`, from `state`.
  explicit InstructLoader(std::shared_ptr<const InstructExamples> data, Split split = Split::kTrain, int rank = 0,
                          int world = 1, InstructLoaderState state = {});
  // Reads and tokenizes every dataset itself.
  InstructLoader(const InstructDataConfig& config, const ChatTemplate& tmpl, const Tokenizer& tokenizer,
                 Split split = Split::kTrain, int rank = 0, int world = 1, InstructLoaderState state = {});
  ~InstructLoader() override;
  PackedBatch next() override;
  Json state() const override { return to_json(state_); }
  const InstructLoaderState& loader_state() const { return state_; }

  int64_t examples() const;         // in this split, over all datasets
  int64_t skipped() const;
  // Rows one pass over the split's examples makes (epochs -> steps).
  int64_t rows_per_epoch() const;
  // The split's examples in file order, as rows (validation: every example once, no mixing).
  std::vector<PackedBatch> all_batches() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  InstructLoaderState state_;
};

}  // namespace granite
