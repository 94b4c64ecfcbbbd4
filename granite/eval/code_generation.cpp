#include "granite/eval/code_generation.h"

#include <algorithm>

#include "granite/core/check.h"
#include "granite/generate/infill.h"

namespace granite {

namespace {

std::vector<int64_t> encode(const Tokenizer& tokenizer, const std::string& text) {
  const std::vector<TokenId> ids = tokenizer.encode(text);
  return {ids.begin(), ids.end()};
}

}  // namespace

std::vector<int64_t> code_prompt_ids(CodeTask task, const CodeProblem& problem, const Tokenizer& tokenizer,
                                     const CodeGenerationOptions& options) {
  if (task == CodeTask::HumanEvalInfilling) {
    const std::vector<TokenId> ids = fim_prompt(tokenizer, problem.prompt, problem.suffix, options.fim_layout);
    return {ids.begin(), ids.end()};
  }
  if (options.format == PromptFormat::Completion) return encode(tokenizer, problem.prompt);
  const std::string chat = render_chat(options.chat, {{"user", problem.instruction}}, /*add_generation_prompt=*/true);
  return encode(tokenizer, chat + answer_prefix(task, options.format, problem));
}

std::string completion_text(CodeTask task, const std::vector<int64_t>& ids, const Tokenizer& tokenizer,
                            const CodeGenerationOptions& options) {
  std::string text = truncate_at_stop(tokenizer.decode(std::vector<TokenId>(ids.begin(), ids.end())),
                                      stop_sequences(task, options.format));
  if (task == CodeTask::MBPP && options.format == PromptFormat::Instruct) text = extract_code(text);
  return text;
}

std::vector<std::vector<std::string>> generate_completions(
    CausalLMImpl& model, const Tokenizer& tokenizer, CodeTask task, const std::vector<CodeProblem>& problems,
    const CodeGenerationOptions& options, const std::function<void(int64_t, int64_t, int64_t)>& on_progress) {
  GRANITE_CHECK(options.samples >= 1, "samples (", options.samples, ") must be >= 1");
  GRANITE_CHECK(options.batch_size >= 1, "batch size (", options.batch_size, ") must be >= 1");
  GenerationOptions gen = options.generation;
  gen.stop_ids = {model.config().eos_token_id};
  if (task == CodeTask::HumanEvalInfilling) gen.stop_ids.push_back(FimTokens::from(tokenizer).pad);
  gen.stop_strings = stop_sequences(task, options.format);
  gen.decode = [&tokenizer](const std::vector<int64_t>& ids) {
    return tokenizer.decode(std::vector<TokenId>(ids.begin(), ids.end()));
  };

  // Work items (problem, sample), longest prompts first so a batch's rows pad little.
  std::vector<std::vector<int64_t>> prompts;
  for (const CodeProblem& p : problems) prompts.push_back(code_prompt_ids(task, p, tokenizer, options));
  std::vector<std::pair<size_t, int64_t>> items;
  for (size_t i = 0; i < problems.size(); ++i)
    for (int64_t s = 0; s < options.samples; ++s) items.emplace_back(i, s);
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    return prompts[a.first].size() > prompts[b.first].size();
  });

  std::vector<std::vector<std::string>> completions(problems.size(), std::vector<std::string>(size_t(options.samples)));
  int64_t done = 0, generated = 0;
  for (size_t begin = 0; begin < items.size(); begin += size_t(options.batch_size)) {
    const size_t end = std::min(items.size(), begin + size_t(options.batch_size));
    std::vector<std::vector<int64_t>> batch;
    gen.row_seeds.clear();
    for (size_t r = begin; r < end; ++r) {
      batch.push_back(prompts[items[r].first]);
      gen.row_seeds.push_back(options.generation.seed + uint64_t(items[r].first) * uint64_t(options.samples) +
                              uint64_t(items[r].second));
    }
    const auto outputs = generate_batch(model, batch, gen);
    for (size_t r = begin; r < end; ++r) {
      std::vector<int64_t> ids = outputs[r - begin];
      generated += int64_t(ids.size());
      if (!ids.empty() && std::count(gen.stop_ids.begin(), gen.stop_ids.end(), ids.back())) ids.pop_back();
      completions[items[r].first][size_t(items[r].second)] = completion_text(task, ids, tokenizer, options);
    }
    done += int64_t(end - begin);
    if (on_progress) on_progress(done, int64_t(items.size()), generated);
  }
  return completions;
}

}  // namespace granite
