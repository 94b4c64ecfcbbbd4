#include "granite/generate/infill.h"

#include <algorithm>

namespace granite {

std::vector<TokenId> fim_prompt(const Tokenizer& tokenizer, const std::string& prefix, const std::string& suffix,
                                FimLayout layout) {
  return fim_permute(prefix + suffix, prefix.size(), prefix.size(), layout, FimTokens::from(tokenizer), tokenizer);
}

GenerationOptions infill_options(const Tokenizer& tokenizer, GenerationOptions options) {
  const FimTokens fim = FimTokens::from(tokenizer);
  for (TokenId stop : {fim.eod, fim.pad})
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), stop) == options.stop_ids.end())
      options.stop_ids.push_back(stop);
  return options;
}

InfillResult infill_result(const Tokenizer& tokenizer, std::vector<int64_t> generated) {
  const FimTokens fim = FimTokens::from(tokenizer);
  InfillResult r;
  r.ids = std::move(generated);
  if (!r.ids.empty() && (r.ids.back() == fim.eod || r.ids.back() == fim.pad)) {
    r.ids.pop_back();
    r.stopped = true;
  }
  r.middle = tokenizer.decode(std::vector<TokenId>(r.ids.begin(), r.ids.end()));
  return r;
}

InfillResult infill(CausalLMImpl& model, const Tokenizer& tokenizer, const std::string& prefix,
                    const std::string& suffix, GenerationOptions options, FimLayout layout) {
  const std::vector<TokenId> prompt = fim_prompt(tokenizer, prefix, suffix, layout);
  return infill_result(tokenizer, generate(model, std::vector<int64_t>(prompt.begin(), prompt.end()),
                                           infill_options(tokenizer, std::move(options))));
}

}  // namespace granite
