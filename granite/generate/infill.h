#pragma once
// Fill-in-the-middle at inference: the prompt is the training layout of granite/data/fim.h with the middle left out
//   PSM  <fim_prefix> prefix <fim_suffix> suffix <fim_middle>            (the model writes the middle)
//   SPM  <fim_prefix> <fim_suffix> suffix <fim_middle> prefix            (the middle continues the prefix)
// built by the same code that lays out the training data (fim_permute with an empty middle), so prompts are
// token-exact against what the model saw; generation stops at end-of-text (the token training put after every
// middle) or <fim_pad>, and the middle comes back without it.
#include <string>
#include <vector>

#include "granite/data/fim.h"
#include "granite/generate/generator.h"
#include "granite/models/causal_lm.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

std::vector<TokenId> fim_prompt(const Tokenizer& tokenizer, const std::string& prefix, const std::string& suffix,
                                FimLayout layout = FimLayout::kPsm);

struct InfillResult {
  std::vector<int64_t> ids;  // the middle's tokens (no stop token)
  std::string middle;        // their text
  bool stopped = false;      // ended at end-of-text / <fim_pad> rather than at max_new_tokens
};

// The pieces of infill(), for callers that generate the middles of several holes in one batch: the options with
// end-of-text and <fim_pad> added to the stop ids, and a generated continuation turned into its middle.
GenerationOptions infill_options(const Tokenizer& tokenizer, GenerationOptions options);
InfillResult infill_result(const Tokenizer& tokenizer, std::vector<int64_t> generated);

// `options.stop_ids` gains end-of-text and <fim_pad>.
InfillResult infill(CausalLMImpl& model, const Tokenizer& tokenizer, const std::string& prefix,
                    const std::string& suffix, GenerationOptions options, FimLayout layout = FimLayout::kPsm);

}  // namespace granite
