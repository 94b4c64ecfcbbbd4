// Training-side forward: hidden_states + lm_head_weight give forward's logits, and a packed row of several documents
// with the document mask and restarted positions gives each document exactly the logits it gets alone -- for every
// fixture architecture (MHA/GQA/MQA, tied/untied, RoPE and learned positions), math and (where built) SDPA.
#include <catch2/catch.hpp>

#include "granite/io/pretrained.h"
#include "granite/train/batch.h"
#include "support/tensor_match.h"

using granite::test::source_path;

TEST_CASE("a packed row with the document mask equals its documents run alone", "[models][packing]") {
  for (const char* name : {"llama_mha_bias_tied", "llama_gqa_bias_untied_theta1e7", "llama_mqa_nobias_headdim",
                           "bigcode_mqa", "bigcode_mha"}) {
    INFO(name);
    auto model = granite::load_pretrained(source_path(std::string("tests/fixtures/hf/") + name));
    model->eval();
    torch::NoGradGuard no_grad;
    const int64_t V = model->config().vocab_size;
    torch::manual_seed(5);
    const std::vector<int64_t> lengths = {6, 1, 9, 4};
    std::vector<torch::Tensor> docs, positions, segments;
    for (size_t d = 0; d < lengths.size(); ++d) {
      docs.push_back(torch::randint(0, V, {lengths[d]}, torch::kLong));
      positions.push_back(torch::arange(lengths[d], torch::kLong));
      segments.push_back(torch::full({lengths[d]}, int64_t(d), torch::kLong));
    }
    const auto ids = torch::cat(docs).unsqueeze(0), pos = torch::cat(positions).unsqueeze(0),
               seg = torch::cat(segments).unsqueeze(0);
    const auto hidden = model->hidden_states(ids, pos, granite::document_causal_mask(seg));
    const auto packed = torch::nn::functional::linear(hidden, model->lm_head_weight());
    // The trunk and the head give forward's logits (no mask: plain causal).
    REQUIRE_CLOSE(torch::nn::functional::linear(model->hidden_states(ids), model->lm_head_weight()),
                  model->forward(ids), 0.0);
    int64_t start = 0;
    for (size_t d = 0; d < docs.size(); ++d) {
      const auto alone = model->forward(docs[d].unsqueeze(0));
      REQUIRE_CLOSE(packed.narrow(1, start, lengths[d]), alone, 1e-4);
      start += lengths[d];
    }
    // Without the mask, later documents see earlier ones.
    const auto leaky = model->forward(ids, pos);
    CHECK(granite::test::max_abs_diff(leaky.narrow(1, 6, 10), packed.narrow(1, 6, 10)).max_abs > 1e-4);
  }
}
