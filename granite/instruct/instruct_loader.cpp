#include "granite/instruct/instruct_loader.h"

#include <algorithm>
#include <numeric>

#include "granite/core/check.h"
#include "granite/core/file_status.h"
#include "granite/core/rng.h"

namespace granite {

namespace {

constexpr int64_t kBucketWindowBatches = 16;  // no packing: global batches sorted together by length

// One training row being filled.
struct Row {
  std::vector<TokenId> input_ids, labels;
  std::vector<Objective> objectives;
  std::vector<int32_t> position_ids, segment_ids;
  int32_t segments = 0;
  int64_t size() const { return int64_t(input_ids.size()); }
};

void append_example(Row& row, const InstructExample& ex) {
  const int32_t segment = row.segments++;
  for (size_t t = 0; t + 1 < ex.tokens.size(); ++t) {
    row.input_ids.push_back(ex.tokens[t]);
    const bool trained = ex.trained[t + 1] != 0;
    row.labels.push_back(trained ? ex.tokens[t + 1] : -100);
    row.objectives.push_back(trained ? Objective::kClm : Objective::kIgnore);
    row.position_ids.push_back(int32_t(t));
    row.segment_ids.push_back(segment);
  }
}

void pad_row(Row& row, int64_t length, TokenId pad) {
  const int32_t segment = row.segments;
  for (int32_t p = 0; row.size() < length; ++p) {
    row.input_ids.push_back(pad);
    row.labels.push_back(-100);
    row.objectives.push_back(Objective::kIgnore);
    row.position_ids.push_back(p);
    row.segment_ids.push_back(segment);
  }
}

PackedBatch to_batch(std::vector<Row>& rows, int64_t seq_len, TokenId pad) {
  PackedBatch b;
  b.rows = int64_t(rows.size());
  b.seq_len = seq_len;
  for (Row& r : rows) {
    pad_row(r, seq_len, pad);
    b.input_ids.insert(b.input_ids.end(), r.input_ids.begin(), r.input_ids.end());
    b.labels.insert(b.labels.end(), r.labels.begin(), r.labels.end());
    b.objectives.insert(b.objectives.end(), r.objectives.begin(), r.objectives.end());
    b.position_ids.insert(b.position_ids.end(), r.position_ids.begin(), r.position_ids.end());
    b.segment_ids.insert(b.segment_ids.end(), r.segment_ids.begin(), r.segment_ids.end());
  }
  return b;
}

// Positions an example takes in a row.
int64_t positions(const InstructExample& ex) { return int64_t(ex.tokens.size()) - 1; }

}  // namespace

InstructDataConfig instruct_data_config_from_json(const Json& j, const std::string& where, const std::string& base) {
  JsonReader r(j, where);
  InstructDataConfig c;
  r.ignore("_comment");
  const Json* datasets = r.raw("datasets");
  GRANITE_CHECK(datasets && datasets->is_array() && !datasets->empty(), where,
                ": \"datasets\" must be a non-empty array of {\"path\", \"weight\"}");
  for (size_t i = 0; i < datasets->size(); ++i) {
    JsonReader d((*datasets)[i], where + ": datasets[" + std::to_string(i) + "]");
    InstructDatasetConfig dc;
    dc.path = resolve_path(d.required<std::string>("path"), base);
    dc.weight = d.optional<double>("weight", dc.weight);
    d.finish();
    GRANITE_CHECK(dc.weight > 0, where, ": datasets[", i, "].weight must be > 0, got ", dc.weight);
    c.datasets.push_back(dc);
  }
  c.seq_len = r.optional<int64_t>("seq_len", c.seq_len);
  c.micro_batch = r.optional<int64_t>("micro_batch", c.micro_batch);
  c.packing = r.optional<bool>("packing", c.packing);
  c.seed = r.optional<uint64_t>("seed", c.seed);
  c.eval_fraction = r.optional<double>("eval_fraction", c.eval_fraction);
  c.skip_invalid = r.optional<bool>("skip_invalid", c.skip_invalid);
  r.finish();
  GRANITE_CHECK(c.seq_len >= 2 && c.micro_batch >= 1, where, ": seq_len must be >= 2 and micro_batch >= 1");
  GRANITE_CHECK(c.eval_fraction >= 0 && c.eval_fraction < 1, where, ": eval_fraction must be in [0, 1), got ",
                c.eval_fraction);
  return c;
}

Json to_json(const InstructDataConfig& c) {
  Json datasets = Json::array();
  for (const auto& d : c.datasets) datasets.push_back({{"path", d.path}, {"weight", d.weight}});
  return Json{{"datasets", datasets},      {"seq_len", c.seq_len},
              {"micro_batch", c.micro_batch}, {"packing", c.packing},
              {"seed", c.seed},              {"eval_fraction", c.eval_fraction},
              {"skip_invalid", c.skip_invalid}};
}

InstructExample tokenize_conversation(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                      const std::vector<ChatMessage>& messages) {
  const auto eos = tokenizer.special_tokens().eos;
  EncodeOptions plain;
  plain.parse_added_tokens = false;  // "<|endoftext|>" written in a conversation is text, not the stop token
  InstructExample ex;
  for (const ChatPiece& piece : chat_pieces(tmpl, messages)) {
    if (piece.eos) {
      GRANITE_CHECK(eos.has_value(), "the chat template puts EOS after answers but the tokenizer names no EOS token");
      ex.tokens.push_back(*eos);
      ex.trained.push_back(1);
      continue;
    }
    for (TokenId id : tokenizer.encode(piece.text, plain)) {
      ex.tokens.push_back(id);
      ex.trained.push_back(piece.trained ? 1 : 0);
    }
  }
  return ex;
}

Json to_json(const InstructLoaderState& s) {
  return Json{{"next_example", s.next_example},
              {"taken", s.taken},
              {"next_row", s.next_row},
              {"window_start", s.window_start}};
}

InstructLoaderState instruct_loader_state_from_json(const Json& j, const std::string& where) {
  JsonReader r(j, where);
  InstructLoaderState s;
  s.next_example = r.required<int64_t>("next_example");
  const Json* taken = r.raw("taken");
  GRANITE_CHECK(taken && taken->is_array(), where, ": missing array 'taken'");
  for (const Json& n : *taken) {
    GRANITE_CHECK(n.is_number_integer(), where, ": 'taken' must hold integers, got ", json_preview(n));
    s.taken.push_back(n.get<int64_t>());
  }
  s.next_row = r.required<int64_t>("next_row");
  s.window_start = r.required<int64_t>("window_start");
  r.finish();
  return s;
}

struct InstructLoader::Impl {
  InstructDataConfig config;
  int rank = 0, world = 1;
  TokenId pad = 0;
  std::shared_ptr<const InstructExamples> data;
  InstructSplit split = InstructSplit::kTrain;
  const std::vector<std::vector<InstructExample>>* examples = nullptr;  // per dataset: this split of `data`
  // Mixture position (the stream of examples).
  struct Mixture {
    int64_t next = 0;
    std::vector<int64_t> taken;
  };
  std::vector<const InstructExample*> window_rows;  // no packing: the current window, and where it starts
  int64_t window_rows_start = -1;
  std::vector<uint64_t> order_epoch;        // per dataset: the epoch `order` holds
  std::vector<std::vector<int64_t>> order;  // per dataset: that epoch's record order

  const InstructExample& take(Mixture& m) {
    size_t best = 0;
    double best_lag = -1e300;
    double total = 0;
    for (const auto& d : config.datasets) total += d.weight;
    for (size_t d = 0; d < examples->size(); ++d) {
      const double lag = config.datasets[d].weight / total * double(m.next + 1) - double(m.taken[d]);
      if (lag > best_lag) best_lag = lag, best = d;
    }
    const int64_t n = int64_t((*examples)[best].size());
    const uint64_t epoch = uint64_t(m.taken[best] / n);
    if (order[best].empty() || order_epoch[best] != epoch) {  // a new seeded order each epoch
      order[best].resize(size_t(n));
      std::iota(order[best].begin(), order[best].end(), 0);
      Rng rng = Rng::derive(config.seed, 1000 + best, epoch);
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[best][size_t(i)], order[best][rng.uniform_int(uint64_t(i + 1))]);
      order_epoch[best] = epoch;
    }
    const InstructExample& ex = (*examples)[best][size_t(order[best][size_t(m.taken[best] % n)])];
    ++m.taken[best];
    ++m.next;
    return ex;
  }

  // Packing: the next global row from mixture position m.
  Row packed_row(Mixture& m) {
    Row row;
    for (;;) {
      Mixture peek = m;
      const InstructExample& ex = take(peek);
      if (row.size() > 0 && row.size() + positions(ex) > config.seq_len) break;
      m = peek;
      append_example(row, ex);
      if (row.size() == config.seq_len) break;
    }
    return row;
  }

  // No packing: the window of examples starting at mixture position m, longest first.
  std::vector<const InstructExample*> window(Mixture m) {
    std::vector<const InstructExample*> out;
    const int64_t size = kBucketWindowBatches * config.micro_batch * world;
    for (int64_t i = 0; i < size; ++i) out.push_back(&take(m));
    std::stable_sort(out.begin(), out.end(), [](const InstructExample* a, const InstructExample* b) {
      return a->tokens.size() > b->tokens.size();
    });
    return out;
  }
};

InstructExamples::InstructExamples(const InstructDataConfig& config, const ChatTemplate& tmpl,
                                   const Tokenizer& tokenizer)
    : config_(config) {
  const auto pad = tokenizer.special_tokens().pad ? tokenizer.special_tokens().pad : tokenizer.special_tokens().eos;
  GRANITE_CHECK(pad.has_value(), "the tokenizer names no pad or EOS token to pad rows with");
  pad_ = *pad;
  for (size_t d = 0; d < config.datasets.size(); ++d) {
    const InstructFile file = read_instruct_file(config.datasets[d].path, config.skip_invalid);
    invalid_ += file.skipped;
    for (auto& split : examples_) split.emplace_back();
    for (size_t i = 0; i < file.records.size(); ++i) {
      Rng rng = Rng::derive(config.seed, d, i);  // the split: fixed by the seed alone
      const size_t s = config.eval_fraction > 0 && rng.uniform01() < config.eval_fraction ? 1 : 0;
      InstructExample ex = tokenize_conversation(tokenizer, tmpl, file.records[i].messages);
      if (positions(ex) > config.seq_len) {
        GRANITE_CHECK(config.skip_invalid, file.records[i].where, ": the example is ", ex.tokens.size(),
                      " tokens, longer than the context (seq_len ", config.seq_len, " + 1); shorten it, raise ",
                      "seq_len, or set skip_invalid to leave such examples out");
        ++too_long_[s];
        continue;
      }
      examples_[s].back().push_back(std::move(ex));
    }
  }
}

InstructLoader::InstructLoader(std::shared_ptr<const InstructExamples> data, Split split, int rank, int world,
                               InstructLoaderState state)
    : impl_(std::make_unique<Impl>()), state_(std::move(state)) {
  GRANITE_CHECK(world >= 1 && rank >= 0 && rank < world, "rank ", rank, " of ", world, " is not a rank");
  Impl& im = *impl_;
  im.data = std::move(data);
  im.config = im.data->config();
  im.rank = rank;
  im.world = world;
  im.pad = im.data->pad();
  im.split = split;
  im.examples = &im.data->split(split);
  if (split == Split::kEval) return;
  for (size_t d = 0; d < im.examples->size(); ++d)
    GRANITE_CHECK(!(*im.examples)[d].empty(), im.config.datasets[d].path, ": no training examples left");
  im.order.resize(im.examples->size());
  im.order_epoch.assign(im.examples->size(), 0);
  if (state_.taken.empty()) state_.taken.assign(im.examples->size(), 0);
  GRANITE_CHECK(state_.taken.size() == im.examples->size(), "the loader state counts ", state_.taken.size(),
                " datasets, the config has ", im.examples->size());
}

InstructLoader::InstructLoader(const InstructDataConfig& config, const ChatTemplate& tmpl, const Tokenizer& tokenizer,
                               Split split, int rank, int world, InstructLoaderState state)
    : InstructLoader(std::make_shared<const InstructExamples>(config, tmpl, tokenizer), split, rank, world,
                     std::move(state)) {}

InstructLoader::~InstructLoader() = default;

int64_t InstructLoader::skipped() const { return impl_->data->skipped(impl_->split); }

int64_t InstructLoader::examples() const {
  int64_t n = 0;
  for (const auto& d : *impl_->examples) n += int64_t(d.size());
  return n;
}

PackedBatch InstructLoader::next() {
  Impl& im = *impl_;
  GRANITE_CHECK(!im.order.empty(), "the validation split is read with all_batches(), not next()");
  std::vector<Row> mine;
  const int64_t global_rows = im.config.micro_batch * im.world;
  int64_t longest = 0;
  for (int64_t i = 0; i < global_rows; ++i) {
    const int64_t g = state_.next_row++;
    Row row;
    if (im.config.packing) {
      Impl::Mixture m{state_.next_example, state_.taken};
      row = im.packed_row(m);
      state_.next_example = m.next;
      state_.taken = m.taken;
    } else {
      // The window opened at state.window_start (mixture counters saved with it): rebuild it, take row `offset`.
      const int64_t size = kBucketWindowBatches * global_rows;
      Impl::Mixture at{state_.next_example, state_.taken};
      const int64_t offset = g - state_.window_start;
      if (im.window_rows_start != state_.window_start) {
        im.window_rows = im.window(at);
        im.window_rows_start = state_.window_start;
      }
      append_example(row, *im.window_rows[size_t(offset)]);
      if (offset + 1 == size) {  // the window is used up: the next one starts after it
        for (int64_t k = 0; k < size; ++k) im.take(at);
        state_.next_example = at.next;
        state_.taken = at.taken;
        state_.window_start = g + 1;
      }
    }
    if (g % im.world == im.rank) {
      longest = std::max(longest, row.size());
      mine.push_back(std::move(row));
    }
  }
  return to_batch(mine, im.config.packing ? im.config.seq_len : longest, im.pad);
}

int64_t InstructLoader::rows_per_epoch() const {
  const Impl& im = *impl_;
  if (!im.config.packing) return examples();
  Impl copy = im;  // a dry run over one epoch of the mixture (the examples are shared, not copied)
  Impl::Mixture m{0, std::vector<int64_t>(im.examples->size(), 0)};
  int64_t rows = 0;
  while (m.next < examples()) copy.packed_row(m), ++rows;
  return rows;
}

std::vector<PackedBatch> InstructLoader::all_batches() const {
  const Impl& im = *impl_;
  std::vector<PackedBatch> out;
  std::vector<Row> rows;
  int64_t longest = 0;
  auto flush = [&] {
    if (rows.empty()) return;
    out.push_back(to_batch(rows, im.config.packing ? im.config.seq_len : longest, im.pad));
    rows.clear();
    longest = 0;
  };
  Row row;
  for (const auto& dataset : *im.examples)
    for (const InstructExample& ex : dataset) {
      if (!im.config.packing || (row.size() > 0 && row.size() + positions(ex) > im.config.seq_len)) {
        if (row.size() > 0) {
          longest = std::max(longest, row.size());
          rows.push_back(std::move(row));
          row = Row();
          if (int64_t(rows.size()) == im.config.micro_batch) flush();
        }
      }
      append_example(row, ex);
    }
  if (row.size() > 0) longest = std::max(longest, row.size()), rows.push_back(std::move(row));
  flush();
  return out;
}

}  // namespace granite
