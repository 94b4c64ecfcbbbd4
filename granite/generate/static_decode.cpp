#include "granite/generate/static_decode.h"


#include "granite/core/check.h"
#include "granite/kernels/fused_ops.h"
#include "granite/nn/attention.h"

#if GRANITE_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace granite {

#if GRANITE_WITH_CUDA
struct StaticDecoder::Graph {
  at::cuda::CUDAGraph graph;
};
#else
struct StaticDecoder::Graph {};
#endif

// A ring of host buffers for queued steps' ids: at most kSlots steps are queued and not yet taken.
struct StaticDecoder::Pending {
  static constexpr int64_t kSlots = 3;
  torch::Tensor host[kSlots];  // (B) int64, pinned on CUDA so the copy does not wait
#if GRANITE_WITH_CUDA
  at::cuda::CUDAEvent copied[kSlots];
#endif
  int64_t first = 0, count = 0;
};

StaticDecoder::StaticDecoder(CausalLMImpl& model, KVCache& cache, torch::Tensor valid, bool use_graph,
                             bool chain_greedy)
    : model_(model), cache_(cache), valid_(std::move(valid)), use_graph_(use_graph), chain_greedy_(chain_greedy) {
  const auto device = valid_.device();
  const int64_t B = cache.batch_size(), capacity = cache.capacity();
  GRANITE_CHECK(valid_.dim() == 2 && valid_.size(0) == B && valid_.size(1) == capacity,
                "static decoder: valid must be (", B, ", ", capacity, "), got ", valid_.sizes());
  const auto ids_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  slot_index_ = torch::arange(capacity, ids_opts);  // (Tmax)
  ids_ = torch::zeros({B, 1}, ids_opts);
  positions_ = torch::zeros({B, 1}, ids_opts);
  slot_ = torch::zeros({1}, ids_opts);
  chosen_ = torch::zeros({B}, ids_opts);
  use_graph_ = use_graph && device.is_cuda();
  pending_ = std::make_unique<Pending>();
  for (auto& host : pending_->host) {
    host = torch::empty({B}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(device.is_cuda()));
  }
  cache_.set_write_slots(slot_);
}

StaticDecoder::~StaticDecoder() { cache_.set_write_slots({}); }

bool StaticDecoder::captured() const { return graph_ != nullptr; }

torch::Tensor StaticDecoder::forward() {
  // Key slot j is visible when it is written (j <= slot) and holds a real token (not left padding).
  // Additive (0 / -inf), made once here rather than by every layer's attention.
  const auto mask = (slot_index_.unsqueeze(0) <= slot_) & valid_;  // (B, Tmax)
  const auto additive = additive_mask(mask.unsqueeze(1).unsqueeze(1), model_.lm_head_weight().scalar_type());
  const auto h = model_.hidden_states(ids_, positions_, additive, &cache_);  // (B, 1, C)
  auto logits = kernels::linear(h.select(1, 0), model_.lm_head_weight());  // (B, V)
  if (chain_greedy_) {  // the next step's inputs, on the device: this step's argmax, one slot and position on
    chosen_.copy_(logits.argmax(-1));
    ids_.copy_(chosen_.view({-1, 1}));
    positions_.add_(1);
    slot_.add_(1);
  }
  return logits;
}

void StaticDecoder::feed(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions) {
  const int64_t B = ids_.size(0);
  GRANITE_CHECK(int64_t(ids.size()) == B && int64_t(positions.size()) == B, "static decoder: ", ids.size(),
                " ids and ", positions.size(), " positions for a batch of ", B);
  const auto cpu = torch::TensorOptions().dtype(torch::kInt64);
  ids_.copy_(torch::tensor(ids, cpu).view({B, 1}));
  positions_.copy_(torch::tensor(positions, cpu).view({B, 1}));
  slot_.fill_(slot);
  next_slot_ = slot;
}

torch::Tensor StaticDecoder::step(const std::vector<int64_t>& ids, int64_t slot,
                                  const std::vector<int64_t>& positions) {
  feed(ids, slot, positions);
  return run();
}

void StaticDecoder::start(const std::vector<int64_t>& ids, int64_t slot, const std::vector<int64_t>& positions) {
  GRANITE_CHECK(chain_greedy_, "static decoder: start/queue_step/take_ids need a decoder made with chain_greedy");
  feed(ids, slot, positions);
}

void StaticDecoder::queue_step() {
  GRANITE_CHECK(chain_greedy_, "static decoder: start/queue_step/take_ids need a decoder made with chain_greedy");
  Pending& p = *pending_;
  GRANITE_CHECK(p.count < Pending::kSlots, "static decoder: ", p.count, " steps queued and not taken (at most ",
                Pending::kSlots, ")");
  run();
  const int64_t i = (p.first + p.count) % Pending::kSlots;
  p.host[i].copy_(chosen_, /*non_blocking=*/true);
#if GRANITE_WITH_CUDA
  if (chosen_.is_cuda()) p.copied[i].record(c10::cuda::getCurrentCUDAStream());
#endif
  ++p.count;
}

std::vector<int64_t> StaticDecoder::take_ids() {
  Pending& p = *pending_;
  GRANITE_CHECK(p.count > 0, "static decoder: take_ids with no step queued");
  const int64_t i = p.first;
#if GRANITE_WITH_CUDA
  if (chosen_.is_cuda()) p.copied[i].synchronize();
#endif
  const int64_t* ids = p.host[i].data_ptr<int64_t>();
  std::vector<int64_t> out(ids, ids + p.host[i].numel());
  p.first = (p.first + 1) % Pending::kSlots;
  --p.count;
  return out;
}

torch::Tensor StaticDecoder::run() {
  GRANITE_CHECK(next_slot_ >= 0 && next_slot_ < cache_.capacity(), "static decoder: slot ", next_slot_,
                " outside the cache (", cache_.capacity(), ")");
  if (chain_greedy_) ++next_slot_;  // the step moves the device's slot on by one
  if (graph_ != nullptr) {
#if GRANITE_WITH_CUDA
    graph_->graph.replay();
#endif
    return logits_;
  }
  if (!use_graph_) return logits_ = forward();
#if GRANITE_WITH_CUDA
  // First CUDA step: run it eagerly on a side stream (this step's real result, and the warm-up capture needs:
  // cuBLAS workspaces, allocator blocks), then capture the same step. Later steps replay the graph.
  const auto main = c10::cuda::getCurrentCUDAStream();
  const auto side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAEvent ready;
  ready.record(main);
  ready.block(side);
  torch::Tensor result;
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    result = forward();
    side.synchronize();
    graph_ = std::make_unique<Graph>();
    graph_->graph.capture_begin();
    logits_ = forward();  // recorded, not run: writes the same k/v at the same slot when replayed
    graph_->graph.capture_end();
  }
  at::cuda::CUDAEvent done;
  done.record(side);
  done.block(main);
  return result;
#else
  return logits_ = forward();
#endif
}

}  // namespace granite
