// The model's side of the code benchmarks: exact prompts (completion, instruct, FIM) and completions that equal a
// plain greedy generation of that prompt cut at the stop sequences, however the work is batched.
#include <catch2/catch.hpp>

#include "granite/config/model_config.h"
#include "granite/eval/code_generation.h"
#include "granite/generate/infill.h"
#include "granite/models/factory.h"
#include "granite/tokenizer/tokenizer.h"
#include "support/paths.h"

using granite::CodeTask;
using granite::test::source_path;

namespace {

const granite::Tokenizer& starcoder() {
  static const auto tok = granite::load_tokenizer(source_path("data/tokenizers/starcoder/tokenizer.json"));
  return *tok;
}

std::vector<int64_t> encode(const std::string& text) {
  const auto ids = starcoder().encode(text);
  return {ids.begin(), ids.end()};
}

granite::CausalLM tiny_model() {
  torch::manual_seed(3);
  return granite::make_model(granite::load_model_config(source_path("configs/models/tiny-llama.json")));
}

std::vector<granite::CodeProblem> problems(CodeTask task, const std::string& set = "single-line") {
  auto all = granite::load_code_problems(task, granite::shipped_code_dataset(source_path("data/eval"), task, set));
  all.resize(3);
  return all;
}

}  // namespace

TEST_CASE("code prompts are the dataset prompt, the chat template around the task, or the FIM layout", "[eval]") {
  granite::CodeGenerationOptions o;
  const auto he = problems(CodeTask::HumanEval);
  CHECK(granite::code_prompt_ids(CodeTask::HumanEval, he[0], starcoder(), o) == encode(he[0].prompt));
  o.format = granite::PromptFormat::Instruct;
  CHECK(granite::code_prompt_ids(CodeTask::HumanEval, he[0], starcoder(), o) ==
        encode("Question:\n" + he[0].instruction + "\n\nAnswer:\n" + he[0].prompt));
  const auto mbpp = problems(CodeTask::MBPP);
  CHECK(granite::code_prompt_ids(CodeTask::MBPP, mbpp[0], starcoder(), o) ==
        encode("Question:\n" + mbpp[0].instruction + "\n\nAnswer:\n"));
  const auto fill = problems(CodeTask::HumanEvalInfilling);
  const auto fim = granite::fim_prompt(starcoder(), fill[0].prompt, fill[0].suffix);
  CHECK(granite::code_prompt_ids(CodeTask::HumanEvalInfilling, fill[0], starcoder(), o) ==
        std::vector<int64_t>(fim.begin(), fim.end()));
}

TEST_CASE("greedy completions equal one plain generation per prompt cut at the stop sequences", "[eval]") {
  auto model = tiny_model();
  for (CodeTask task : {CodeTask::HumanEval, CodeTask::MBPP, CodeTask::HumanEvalInfilling}) {
    INFO(granite::code_task_name(task));
    const auto ps = problems(task);
    granite::CodeGenerationOptions o;
    o.generation.max_new_tokens = 12;
    o.batch_size = 2;  // a batch of 2 and a batch of 1
    const auto completions = granite::generate_completions(*model, starcoder(), task, ps, o);
    REQUIRE(completions.size() == ps.size());
    for (size_t i = 0; i < ps.size(); ++i) {
      granite::GenerationOptions alone;
      alone.max_new_tokens = 12;
      alone.stop_ids = {model->config().eos_token_id};
      if (task == CodeTask::HumanEvalInfilling) alone.stop_ids.push_back(4);  // <fim_pad>
      auto ids = granite::generate(*model, granite::code_prompt_ids(task, ps[i], starcoder(), o), alone);
      if (!ids.empty() && std::count(alone.stop_ids.begin(), alone.stop_ids.end(), ids.back())) ids.pop_back();
      const std::string text = starcoder().decode(std::vector<granite::TokenId>(ids.begin(), ids.end()));
      INFO("problem " << i);
      REQUIRE(completions[i].size() == 1);
      CHECK(completions[i][0] == granite::truncate_at_stop(text, granite::stop_sequences(task, o.format)));
    }
  }
}

TEST_CASE("sampled completions depend on the seed and the sample, not on the batching", "[eval]") {
  auto model = tiny_model();
  const auto ps = problems(CodeTask::HumanEval);
  granite::CodeGenerationOptions o;
  o.samples = 3;
  o.generation.max_new_tokens = 6;
  o.generation.sampling.greedy = false;
  o.generation.sampling.temperature = 1.0;
  o.generation.seed = 5;
  o.batch_size = 4;
  const auto a = granite::generate_completions(*model, starcoder(), CodeTask::HumanEval, ps, o);
  o.batch_size = 1;
  const auto b = granite::generate_completions(*model, starcoder(), CodeTask::HumanEval, ps, o);
  CHECK(a == b);
  REQUIRE(a[0].size() == 3);
  CHECK((a[0][0] != a[0][1] || a[0][1] != a[0][2]));  // a random model over 49k tokens: samples differ
  o.generation.seed = 6;
  CHECK(granite::generate_completions(*model, starcoder(), CodeTask::HumanEval, ps, o) != a);
}
