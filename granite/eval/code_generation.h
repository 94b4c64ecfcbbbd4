#pragma once
// The model's side of a code benchmark: the exact prompt of each problem (granite/eval/code_tasks.h formats; the
// chat template for instruct models; the FIM layout for infilling) and its sampled or greedy completions, generated
// in batches (granite/generate/generator.h) and cut at the task's stop sequences.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "granite/data/fim.h"
#include "granite/eval/code_tasks.h"
#include "granite/generate/generator.h"
#include "granite/instruct/chat_template.h"
#include "granite/models/causal_lm.h"
#include "granite/tokenizer/tokenizer.h"

namespace granite {

struct CodeGenerationOptions {
  PromptFormat format = PromptFormat::Completion;
  int64_t samples = 1;      // completions per problem
  int64_t batch_size = 8;   // sequences per generate_batch call
  // max_new_tokens, sampling, seed (sample s of problem i draws with seed + i * samples + s, whatever the
  // batching), repetition penalty. Stop ids and stop strings are set per task.
  GenerationOptions generation;
  ChatTemplate chat;                   // instruct prompts
  FimLayout fim_layout = FimLayout::kPsm;  // infilling prompts
};

// The token ids the model is given for `problem`.
std::vector<int64_t> code_prompt_ids(CodeTask task, const CodeProblem& problem, const Tokenizer& tokenizer,
                                     const CodeGenerationOptions& options);

// From generated ids (the stop token already dropped) to the completion that goes into the check program: decoded,
// cut at the task's stop sequences; an instruct MBPP answer reduced to its code.
std::string completion_text(CodeTask task, const std::vector<int64_t>& ids, const Tokenizer& tokenizer,
                            const CodeGenerationOptions& options);

// completions[i][s]: sample s of problem i. `on_progress(sequences_done, sequences_total, tokens_generated)`.
std::vector<std::vector<std::string>> generate_completions(
    CausalLMImpl& model, const Tokenizer& tokenizer, CodeTask task, const std::vector<CodeProblem>& problems,
    const CodeGenerationOptions& options,
    const std::function<void(int64_t, int64_t, int64_t)>& on_progress = nullptr);

}  // namespace granite
