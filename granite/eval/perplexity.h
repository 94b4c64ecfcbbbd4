#pragma once
// Perplexity (and mean validation loss) of a model over token shards: the shards' documents in order (one epoch, no
// shuffling), cut into consecutive non-overlapping windows of seq_len tokens; every window is one causal sequence
// and each of its tokens after the first is predicted from those before it in the window (the "fixed-length"
// evaluation of HF's perplexity guide, stride = window). Documents already end in EOS, so they are separated as
// in training without document masking.
#include <cstdint>
#include <functional>

#include "granite/data/token_stream.h"
#include "granite/models/causal_lm.h"

namespace granite {

struct PerplexityOptions {
  int64_t seq_len = 2048;
  int64_t batch_size = 4;      // windows per forward
  int64_t max_tokens = 0;      // stop after this many stream tokens (0 = the whole epoch)
  int64_t logits_chunk = 512;  // positions per log-softmax, bounding the (positions x vocab) fp32 logits
};

struct PerplexityResult {
  int64_t windows = 0;
  int64_t predicted = 0;  // tokens scored (each window's length - 1)
  double nll_sum = 0;     // sum of -log p(token | window prefix), natural log
  double loss() const { return predicted > 0 ? nll_sum / double(predicted) : 0.0; }
  double perplexity() const;
};

// `on_progress(tokens_done, tokens_total)` after each batch (may be null).
PerplexityResult evaluate_perplexity(CausalLMImpl& model, const TokenStream& stream, const PerplexityOptions& options,
                                     const std::function<void(int64_t, int64_t)>& on_progress = nullptr);

}  // namespace granite
