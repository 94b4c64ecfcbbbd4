// Instruction tuning's data path: the Granite template rendered exactly as the models' chat_template (strings from
// granite-facts.md section 3), the loss mask on answers and their EOS only, the record shapes and their errors,
// packing without leaks between examples, the loader's resume and ranks, and NEFTune.
#include <catch2/catch.hpp>

#include <fstream>

#include "granite/core/json.h"
#include "granite/instruct/instruct_loader.h"
#include "granite/models/factory.h"
#include "granite/nn/neftune.h"
#include "granite/train/batch.h"
#include "support/paths.h"

using Catch::Matchers::Contains;
using granite::ChatMessage;

namespace {

const granite::Tokenizer& starcoder() {
  static const auto tok = granite::load_tokenizer(granite::test::source_path("data/tokenizers/starcoder/tokenizer.json"));
  return *tok;
}

const std::string& files_dir() {
  static const std::string dir = granite::test::process_scratch_dir("instruct_files");
  return dir;
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = files_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<int64_t> to_longs(const std::vector<granite::TokenId>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

TEST_CASE("the Granite template renders as the models' chat_template", "[instruct]") {
  const granite::ChatTemplate t;
  // granite-facts.md section 3: the two renderings made with HF's Jinja settings.
  CHECK(granite::render_chat(t, {{"system", "SYS"}, {"user", "Q1"}, {"assistant", "A1"}, {"user", "Q2"}}, true) ==
        "System:\nSYS\n\nQuestion:\nQ1\n\nAnswer:\nA1\n\nQuestion:\nQ2\n\nAnswer:\n");
  CHECK(granite::render_chat(t, {{"user", "Write a code to find the maximum value in a list of numbers."}}, true) ==
        "Question:\nWrite a code to find the maximum value in a list of numbers.\n\nAnswer:\n");
  CHECK(granite::render_chat(t, {{"user", "Q"}, {"assistant", "A"}}) == "Question:\nQ\n\nAnswer:\nA\n\n");
  // The Jinja string saved into tokenizer_config.json is the models' own, byte for byte (granite-facts.md, as JSON).
  const std::string facts =
      R"("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ 'Question:\n' + message['content'] + '\n\n' }}{% elif message['role'] == 'system' %}\n{{ 'System:\n' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}{{ 'Answer:\n'  + message['content'] + '\n\n' }}{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ 'Answer:\n' }}{% endif %}{% endfor %}")";
  CHECK(granite::jinja_chat_template(t) == granite::Json::parse(facts).get<std::string>());
  // Other formats are configuration; a pattern without {content} is an error naming it.
  const auto custom = granite::chat_template_from_json(
      granite::Json{{"user", "<user>{content}</user>"}, {"assistant", "<bot>{content}</bot>"}}, "cfg");
  CHECK(granite::render_chat(custom, {{"user", "hi"}, {"assistant", "yo"}}) == "<user>hi</user><bot>yo</bot>");
  CHECK(granite::jinja_chat_template(custom).find("'<user>' + message['content'] + '</user>'") != std::string::npos);
  REQUIRE_THROWS_WITH(granite::chat_template_from_json(granite::Json{{"user", "no placeholder"}}, "cfg: template"),
                      Contains("cfg: template") && Contains("user") && Contains("{content}"));
  REQUIRE_THROWS_WITH(granite::chat_template_from_json(granite::Json{{"usr", "{content}"}}, "cfg: template"),
                      Contains("usr"));
  REQUIRE_THROWS_WITH(granite::render_chat(t, {{"tool", "x"}}), Contains("unknown chat role \"tool\""));
}

TEST_CASE("the loss mask covers exactly the answers and their EOS, in every turn", "[instruct]") {
  const granite::Tokenizer& tok = starcoder();
  const granite::ChatTemplate t;
  const std::vector<ChatMessage> chat{{"system", "Be brief."},
                                      {"user", "Add 2 and 3 in Python."},
                                      {"assistant", "print(2 + 3)"},
                                      {"user", "And in C?"},
                                      {"assistant", "printf(\"%d\", 2 + 3);"}};
  const granite::InstructExample ex = granite::tokenize_conversation(tok, t, chat);
  REQUIRE(ex.tokens.size() == ex.trained.size());
  const granite::TokenId eos = *tok.special_tokens().eos;
  std::vector<granite::TokenId> trained, first_answer;
  int eos_trained = 0, eos_total = 0;
  for (size_t i = 0; i < ex.tokens.size(); ++i) {
    eos_total += ex.tokens[i] == eos;
    if (!ex.trained[i]) continue;
    if (ex.tokens[i] == eos) {
      ++eos_trained;
      continue;
    }
    trained.push_back(ex.tokens[i]);
  }
  CHECK(eos_total == 2);
  CHECK(eos_trained == 2);  // one EOS after each answer, both trained
  CHECK(tok.decode(trained) == "print(2 + 3)printf(\"%d\", 2 + 3);");
  // Untrained and trained together: the rendering with EOS after each answer, no BOS.
  CHECK(tok.decode(ex.tokens) ==
        "System:\nBe brief.\n\nQuestion:\nAdd 2 and 3 in Python.\n\nAnswer:\nprint(2 + 3)<|endoftext|>\n\n"
        "Question:\nAnd in C?\n\nAnswer:\nprintf(\"%d\", 2 + 3);<|endoftext|>\n\n");
  CHECK(ex.trained.front() == 0);
  // A "<|endoftext|>" typed in a message is text, not the stop token.
  const auto typed = granite::tokenize_conversation(tok, t, {{"user", "<|endoftext|>"}, {"assistant", "ok"}});
  CHECK(std::count(typed.tokens.begin(), typed.tokens.end(), eos) == 1);
}

TEST_CASE("instruction records: Alpaca, chat and prompt/completion, and bad records name file and line", "[instruct]") {
  const std::string good = write_file(
      "good.jsonl",
      R"({"instruction": "Sum", "input": "1, 2", "output": "3"})"
      "\n\n"
      R"({"instruction": "Hi", "input": "", "response": "Hello"})"
      "\n"
      R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]})"
      "\n"
      R"({"prompt": "P", "completion": "C"})"
      "\n");
  const auto file = granite::read_instruct_file(good);
  REQUIRE(file.records.size() == 4);
  CHECK(file.records[0].messages[0].content == "Sum\n\n1, 2");
  CHECK(file.records[0].messages[1].content == "3");
  CHECK(file.records[1].messages[0].content == "Hi");
  CHECK(file.records[1].messages[1].content == "Hello");
  CHECK(file.records[2].messages.size() == 3);
  CHECK(file.records[2].where == good + ":4");  // blank line 2 skipped, numbering kept
  CHECK(file.records[3].messages[1].content == "C");
  // A JSON array names elements.
  const auto array = granite::read_instruct_file(write_file("list.json", R"([{"prompt": "a", "completion": "b"}])"));
  CHECK(array.records[0].where == files_dir() + "/list.json: element 0");

  const std::string bad_json = write_file("bad.jsonl", R"({"prompt": "a", "completion": "b"})" "\n{not json\n");
  REQUIRE_THROWS_WITH(granite::read_instruct_file(bad_json), Contains(bad_json + ":2") && Contains("not valid JSON"));
  const std::string bad_role = write_file(
      "role.jsonl", R"({"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "a"}]})" "\n");
  REQUIRE_THROWS_WITH(granite::read_instruct_file(bad_role),
                      Contains(bad_role + ":1: messages[1]") && Contains("unknown role \"robot\""));
  // The bundled Code Alpaca sample has a real record with an empty answer (line 238).
  const std::string sample = granite::test::source_path("data/instruct/codealpaca-sample.jsonl");
  REQUIRE_THROWS_WITH(granite::read_instruct_file(sample), Contains(sample + ":238") && Contains("no answer"));
  const auto skipped = granite::read_instruct_file(sample, /*skip_invalid=*/true);
  CHECK(skipped.skipped == 1);
  CHECK(skipped.records.size() == 399);
  REQUIRE_THROWS_WITH(granite::read_instruct_file(write_file("x.txt", "")), Contains(".jsonl or .json"));
}

namespace {

granite::InstructDataConfig config_for(const std::vector<std::string>& paths, int64_t seq_len, int64_t micro_batch,
                                       bool packing = true) {
  granite::InstructDataConfig c;
  for (const auto& p : paths) c.datasets.push_back({p, 1.0});
  c.seq_len = seq_len;
  c.micro_batch = micro_batch;
  c.packing = packing;
  return c;
}

// Per segment of row 0: the summed next-token loss over its kept labels.
std::vector<double> segment_losses(granite::CausalLMImpl& model, const granite::PackedBatch& packed) {
  const granite::TrainBatch b = granite::to_tensors(packed);
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(b.input_ids, b.position_ids).detach();  // positions only: check the mask below
  const auto hidden = model.hidden_states(b.input_ids, b.position_ids, granite::document_causal_mask(b.segment_ids));
  const auto masked_logits = torch::nn::functional::linear(hidden, model.lm_head_weight());
  const auto ce = torch::nn::functional::cross_entropy(
      masked_logits.view({-1, masked_logits.size(-1)}), b.labels.view({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
  const auto seg = b.segment_ids.view({-1});
  std::vector<double> out;
  for (int64_t s = 0; s <= seg.max().item<int64_t>(); ++s) out.push_back(ce.masked_select(seg == s).sum().item<double>());
  return out;
}

}  // namespace

TEST_CASE("packing keeps examples apart: changing one example never changes another's loss", "[instruct]") {
  const auto a = R"J({"prompt": "Reverse a list in Python.", "completion": "xs[::-1]"})J";
  const auto c = R"J({"prompt": "Length of a string in C?", "completion": "strlen(s)"})J";
  const std::string one = write_file("pack1.jsonl", std::string(a) + "\n" +
                                                        R"J({"prompt": "Sort a list.", "completion": "sorted(xs)"})J" +
                                                        "\n" + c + "\n");
  const std::string two = write_file("pack2.jsonl", std::string(a) + "\n" +
                                                        R"J({"prompt": "Make a set of a list, please now.", "completion": "set(xs) if xs else set()"})J" +
                                                        "\n" + c + "\n");
  auto load = [&](const std::string& path) {
    granite::InstructDataConfig cfg = config_for({path}, 128, 1);
    return granite::InstructLoader(cfg, granite::ChatTemplate{}, starcoder()).all_batches();
  };
  const auto b1 = load(one), b2 = load(two);
  REQUIRE(b1.size() == 1);  // all three in one row
  REQUIRE(b2.size() == 1);
  granite::ModelConfig mc = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  torch::manual_seed(5);
  auto model = granite::make_model(mc);
  model->eval();
  const auto l1 = segment_losses(*model, b1[0]), l2 = segment_losses(*model, b2[0]);
  REQUIRE(l1.size() == 4);  // three examples and the padding
  CHECK(l1[0] == Approx(l2[0]).epsilon(1e-6));
  CHECK(l1[1] != Approx(l2[1]).epsilon(1e-3));  // the changed example
  CHECK(l1[0] > 0);
  // The third example sits at another offset in the two rows, and its loss is still the same.
  CHECK(l1[2] == Approx(l2[2]).epsilon(1e-5));
  // Positions restart at 0 for each example, padding carries no label.
  const auto& p = b1[0];
  int restarts = 0;
  for (int64_t t = 0; t < p.seq_len; ++t) restarts += p.position_ids[size_t(t)] == 0;
  CHECK(restarts == 4);
  for (int64_t t = 0; t < p.seq_len; ++t)
    if (p.segment_ids[size_t(t)] == 3) CHECK(p.labels[size_t(t)] == -100);
}

TEST_CASE("the instruction loader resumes exactly, splits rows over ranks, buckets without packing", "[instruct]") {
  const std::string sample = granite::test::source_path("data/instruct/codealpaca-sample.jsonl");
  for (bool packing : {true, false}) {
    INFO("packing " << packing);
    granite::InstructDataConfig cfg = config_for({sample, sample}, 256, 4, packing);
    cfg.skip_invalid = true;
    cfg.datasets[1].weight = 3;
    granite::InstructLoader whole(cfg, granite::ChatTemplate{}, starcoder());
    for (int i = 0; i < 3; ++i) whole.next();
    const auto state = whole.loader_state();
    const auto continued = whole.next();
    granite::InstructLoader resumed(cfg, granite::ChatTemplate{}, starcoder(), granite::InstructLoader::Split::kTrain,
                                    0, 1, granite::instruct_loader_state_from_json(granite::to_json(state), "state"));
    const auto again = resumed.next();
    CHECK(again.input_ids == continued.input_ids);
    CHECK(again.labels == continued.labels);
    // Two ranks with micro-batch 2 take the rows of one rank's micro-batch 4: rank r gets global rows r, r + 2.
    granite::InstructDataConfig half = cfg;
    half.micro_batch = 2;
    granite::InstructLoader one(cfg, granite::ChatTemplate{}, starcoder());
    granite::InstructLoader r0(half, granite::ChatTemplate{}, starcoder(), granite::InstructLoader::Split::kTrain, 0, 2);
    granite::InstructLoader r1(half, granite::ChatTemplate{}, starcoder(), granite::InstructLoader::Split::kTrain, 1, 2);
    const auto b = one.next(), b0 = r0.next(), b1 = r1.next();
    const auto row = [](const granite::PackedBatch& p, int64_t r) {
      std::vector<granite::TokenId> ids(p.input_ids.begin() + r * p.seq_len, p.input_ids.begin() + (r + 1) * p.seq_len);
      while (!ids.empty() && ids.back() == 0) ids.pop_back();  // padding (EOS ids) differs with the batch's length
      return ids;
    };
    CHECK(row(b, 0) == row(b0, 0));
    CHECK(row(b, 1) == row(b1, 0));
    CHECK(row(b, 2) == row(b0, 1));
    CHECK(row(b, 3) == row(b1, 1));
    if (!packing) {  // bucketing: a micro-batch's rows have similar lengths, padded to the longest of them only
      int64_t longest = 0;
      for (int64_t r = 0; r < b.rows; ++r) longest = std::max<int64_t>(longest, int64_t(row(b, r).size()));
      CHECK(b.seq_len <= longest + 1);
      CHECK(b.seq_len < 256);
    }
  }
  // The validation split is fixed by the seed and disjoint from training.
  granite::InstructDataConfig cfg = config_for({sample}, 256, 4);
  cfg.skip_invalid = true;
  cfg.eval_fraction = 0.1;
  granite::InstructLoader train(cfg, granite::ChatTemplate{}, starcoder());
  granite::InstructLoader eval(cfg, granite::ChatTemplate{}, starcoder(), granite::InstructLoader::Split::kEval);
  // Each split's skips: the one invalid record, and its examples longer than 256 tokens.
  CHECK(train.examples() + eval.examples() + (train.skipped() - 1) + (eval.skipped() - 1) == 399);
  CHECK(eval.examples() > 20);
  CHECK(eval.examples() < 60);
  // An example longer than the context is an error naming its record, or a counted skip.
  granite::InstructDataConfig tight = config_for({sample}, 16, 1);
  tight.skip_invalid = false;
  const std::string only_good = write_file("long.jsonl", R"({"prompt": "p", "completion": "a very long answer that cannot fit into sixteen tokens of context at all, not even close"})" "\n" R"({"prompt": "p", "completion": "ok"})" "\n");
  tight.datasets = {{only_good, 1.0}};
  REQUIRE_THROWS_WITH(granite::InstructLoader(tight, granite::ChatTemplate{}, starcoder()),
                      Contains(only_good + ":1") && Contains("longer than the context"));
  tight.skip_invalid = true;
  granite::InstructLoader skipping(tight, granite::ChatTemplate{}, starcoder());
  CHECK(skipping.skipped() == 1);
  CHECK(skipping.examples() == 1);
}

TEST_CASE("NEFTune: uniform noise of magnitude alpha / sqrt(T d) in training, none at evaluation", "[instruct][nn]") {
  torch::manual_seed(0);
  const auto zeros = torch::zeros({4, 256, 64});
  const auto noise = granite::add_neftune_noise(zeros, 5.0);
  const double m = 5.0 / std::sqrt(256.0 * 64.0);
  CHECK(noise.abs().max().item<double>() <= m);
  CHECK(noise.abs().max().item<double>() > 0.99 * m);
  CHECK(std::abs(noise.mean().item<double>()) < 0.01 * m);
  CHECK(noise.var().item<double>() == Approx(m * m / 3).epsilon(0.02));  // U(-m, m): variance m^2 / 3
  // In a model: training forwards differ run to run, evaluation is untouched; gradients still reach the embedding.
  granite::ModelConfig mc = granite::load_model_config(granite::test::source_path("configs/models/tiny-llama.json"));
  auto model = granite::make_model(mc);
  const auto ids = torch::randint(0, mc.vocab_size, {2, 16});
  model->eval();
  const auto clean = model->forward(ids).detach();
  model->set_neftune_alpha(5.0);
  CHECK(torch::equal(model->forward(ids).detach(), clean));
  model->train();
  const auto noisy = model->forward(ids);
  CHECK_FALSE(torch::allclose(noisy.detach(), clean));
  noisy.sum().backward();
  for (const auto& p : model->named_parameters())
    if (p.key() == "model.embed_tokens.weight") CHECK(p.value().grad().defined());
}
