// Perplexity over token shards equals the cross-entropy of transformers' own logits on the same tokens.
#include <catch2/catch.hpp>

#include "granite/data/indexed_dataset.h"
#include "granite/eval/perplexity.h"
#include "granite/io/pretrained.h"
#include "granite/io/safetensors.h"
#include "support/paths.h"

using granite::test::source_path;

TEST_CASE("perplexity equals exp of the mean next-token cross-entropy of HF's logits", "[eval][perplexity]") {
  for (const char* name : {"llama_gqa_bias_untied_theta1e7", "bigcode_mqa"}) {
    INFO(name);
    const std::string fixture = source_path(std::string("tests/fixtures/hf/") + name);
    auto model = granite::load_pretrained(fixture);
    const auto expected = granite::load_safetensors(fixture + "/expected.safetensors");
    const auto ids = expected.at("input_ids");      // (B, T)
    const auto hf_logits = expected.at("logits");   // (B, T, V), transformers fp32
    const int64_t B = ids.size(0), T = ids.size(1);
    REQUIRE(B >= 2);

    // Each row one document of one shard, so the windows of length T are exactly the rows.
    const std::string prefix = granite::test::scratch_dir(std::string("ppl_") + name) + "/shard-00000";
    granite::IndexedDatasetWriter writer(prefix, granite::TokenDtype::UInt16);
    for (int64_t b = 0; b < B; ++b) {
      const auto row = ids[b].to(torch::kInt32).contiguous();
      writer.add_document(std::vector<granite::TokenId>(row.data_ptr<int32_t>(), row.data_ptr<int32_t>() + T));
    }
    writer.finish();
    const granite::TokenStream stream({prefix}, 0, /*shuffle=*/false);

    const auto logp = hf_logits.narrow(1, 0, T - 1).log_softmax(-1).gather(2, ids.narrow(1, 1, T - 1).unsqueeze(2));
    const double hf_loss = -logp.to(torch::kFloat64).mean().item<double>();

    for (int64_t batch : {1, 2}) {
      granite::PerplexityOptions o;
      o.seq_len = T;
      o.batch_size = batch;
      o.logits_chunk = 5;  // several chunks per row
      const auto r = granite::evaluate_perplexity(*model, stream, o);
      INFO("batch " << batch);
      CHECK(r.windows == B);
      CHECK(r.predicted == B * (T - 1));
      CHECK(r.loss() == Approx(hf_loss).epsilon(1e-5));
      CHECK(r.perplexity() == Approx(std::exp(hf_loss)).epsilon(1e-5));
    }
    // Only the first row's tokens: the first row's loss.
    granite::PerplexityOptions first;
    first.seq_len = T;
    first.max_tokens = T;
    const double row0 = -logp[0].to(torch::kFloat64).mean().item<double>();
    CHECK(granite::evaluate_perplexity(*model, stream, first).loss() == Approx(row0).epsilon(1e-5));
  }
}
