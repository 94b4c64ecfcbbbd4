#pragma once
// Decode steps with static shapes, the layout CUDA graphs need (gpt-fast, HF's StaticCache): the step's inputs live
// in fixed device tensors updated in place, the KV cache writes at a device-side slot (KVCache's static mode) and
// attention covers the whole cache under a mask (slots <= the current one, minus left padding). On CUDA the step --
// embedding, every block, the final norm and the LM head -- is captured once in a CUDA graph and replayed: one graph
// launch per token instead of hundreds of kernel launches, which is what bounds batch-1 decoding. On CPU the same
// static step runs eagerly (and is tested against the dynamic decoder there).
#include <memory>
#include <vector>

#include "granite/models/causal_lm.h"
#include "granite/nn/kv_cache.h"

namespace granite {

class StaticDecoder {
 public:
  // valid: (B, cache capacity) bool on the model's device, false at left-pad slots. use_graph: capture on CUDA
  // (ignored elsewhere). The cache must outlive the decoder; the decoder puts it in static mode while it lives.
  StaticDecoder(CausalLMImpl& model, KVCache& cache, torch::Tensor valid, bool use_graph);
  ~StaticDecoder();
  StaticDecoder(const StaticDecoder&) = delete;
  StaticDecoder& operator=(const StaticDecoder&) = delete;

  // Feeds ids[b] at cache slot `slot` (every row the same slot) with position positions[b]; returns the logits of
  // that position, (B, V), a view of the decoder's output buffer valid until the next step.
  torch::Tensor step(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions);
  bool captured() const;  // a CUDA graph is in use

 private:
  torch::Tensor forward();  // the model on the static inputs

  CausalLMImpl& model_;
  KVCache& cache_;
  torch::Tensor valid_, slot_index_, ids_, positions_, slot_, logits_;
  bool use_graph_;
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace granite
