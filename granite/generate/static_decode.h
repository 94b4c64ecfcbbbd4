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
  // (ignored elsewhere). chain_greedy: every step also takes the argmax of its logits as the next step's ids and
  // advances slot and positions by one, on the device (the queue_step / take_ids interface below). The cache must
  // outlive the decoder; the decoder puts it in static mode while it lives.
  StaticDecoder(CausalLMImpl& model, KVCache& cache, torch::Tensor valid, bool use_graph, bool chain_greedy = false);
  ~StaticDecoder();
  StaticDecoder(const StaticDecoder&) = delete;
  StaticDecoder& operator=(const StaticDecoder&) = delete;

  // Feeds ids[b] at cache slot `slot` (every row the same slot) with position positions[b]; returns the logits of
  // that position, (B, V), a view of the decoder's output buffer valid until the next step.
  torch::Tensor step(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions);

  // Greedy decoding one step ahead of the host (chain_greedy): start() sets the first step's inputs; queue_step()
  // queues a step, whose argmax ids are copied to host memory as it ends, without waiting for it; take_ids() waits
  // for the oldest queued step and returns its ids. So the next step is already queued while the host checks stop
  // conditions and streams this one's tokens: the GPU does not idle for that round trip between tokens.
  void start(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions);
  void queue_step();
  std::vector<int64_t> take_ids();

  bool captured() const;  // a CUDA graph is in use

 private:
  void feed(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions);
  torch::Tensor run();      // one step on the current inputs (captured on its first CUDA call)
  torch::Tensor forward();  // the model on the static inputs

  CausalLMImpl& model_;
  KVCache& cache_;
  torch::Tensor valid_, slot_index_, ids_, positions_, slot_, logits_;
  bool use_graph_, chain_greedy_;
  int64_t next_slot_ = 0;  // the slot the next step writes (host copy, for the capacity check)
  torch::Tensor chosen_;   // (B) the argmax ids of the last step (chain_greedy)
  struct Graph;
  std::unique_ptr<Graph> graph_;
  struct Pending;  // queued steps' host copies of chosen_
  std::unique_ptr<Pending> pending_;
};

}  // namespace granite
