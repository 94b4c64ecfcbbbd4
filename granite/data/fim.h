#pragma once
// Fill-in-the-middle as StarCoder and Granite Code were trained (Bavarian et al. 2022, "Efficient Training of Language
// Models to Fill in the Middle"; the implementation followed is BigCode's Megatron-LM, now Megatron-LM's
// megatron/training/datasets/fim_dataset.py: GPTFIMDataset._permute and _query_document_sample_shuffle_indices).
//
// A packed sample (seq_len + 1 tokens, possibly several documents separated by EOD) is split at every EOD; each
// non-empty segment independently, with probability `rate`, is decoded to text, cut at two points drawn uniformly
// among its character (code point) boundaries, 0..n inclusive and sorted, into prefix / middle / suffix, each
// re-encoded, and laid out as
//   PSM   <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
//   SPM   <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle      (chosen with probability `spm_rate`;
//         StarCoder's SPM variant, "variant 2" of the FIM paper: the prefix follows <fim_middle>, so the middle
//         continues it as in plain left-to-right text)
// EODs stay where they were; the FIM'd sample is then cut back to seq_len + 1 tokens or padded with <fim_pad> at the
// end. A segment never mixes with another: no document's text can land in another's prefix, middle or suffix.
//
// Where this differs from Megatron, on purpose:
//   * text is re-encoded as plain text (code that mentions "<fim_prefix>" stays text, as in data preparation);
//   * a segment that cannot be reproduced from its text stays as it is (counted in `unchanged_lossy`): one holding
//     special tokens, or cut by the packing in the middle of a UTF-8 character (decoding would give U+FFFD);
//   * randomness comes from a generator the caller derives per sample (granite/core/rng.h), so a sample is a pure
//     function of its index and the seed: resumable and parallel without RNG state.
#include <cstdint>
#include <string>
#include <vector>

#include "granite/core/rng.h"
#include "granite/data/objective.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

struct FimConfig {
  double rate = 0.5;      // probability that a segment is permuted
  double spm_rate = 0.5;  // probability that a permuted segment uses SPM rather than PSM
};

// The special ids FIM needs, looked up by content in the tokenizer (never hard-coded).
struct FimTokens {
  TokenId prefix = -1, middle = -1, suffix = -1, pad = -1, eod = -1;
  // Error naming the missing token when the tokenizer lacks one (only when `rate` > 0 do callers need them).
  static FimTokens from(const Tokenizer& tokenizer);
};

enum class FimLayout : uint8_t { kPsm, kSpm };

// The permuted tokens of one segment's text cut at byte offsets [middle_begin, middle_end) (which must be code point
// boundaries of valid UTF-8 `text`).
std::vector<TokenId> fim_permute(const std::string& text, size_t middle_begin, size_t middle_end, FimLayout layout,
                                 const FimTokens& tokens, const Tokenizer& tokenizer);

struct FimStats {
  int64_t segments = 0;         // non-empty segments seen
  int64_t psm = 0, spm = 0;     // segments permuted, by layout
  int64_t unchanged_lossy = 0;  // drawn for FIM but kept as they were (see above)
  int64_t truncated = 0;        // tokens cut from the end to restore the length
  int64_t padded = 0;           // <fim_pad> tokens appended to restore the length
  FimStats& operator+=(const FimStats& o);
};

// Applies FIM to a packed sample in place: `tokens` keeps its length; `objectives` (same length) marks each token
// kFim (a permuted segment and the EOD that ends it), kClm (an unchanged one and its EOD) or kIgnore (<fim_pad>).
void apply_fim(std::vector<TokenId>& tokens, std::vector<Objective>& objectives, const FimConfig& config,
               const FimTokens& fim_tokens, const Tokenizer& tokenizer, Rng& rng, FimStats* stats = nullptr);

}  // namespace granite
