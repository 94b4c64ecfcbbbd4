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

StaticDecoder::StaticDecoder(CausalLMImpl& model, KVCache& cache, torch::Tensor valid, bool use_graph)
    : model_(model), cache_(cache), valid_(std::move(valid)), use_graph_(use_graph) {
  const auto device = valid_.device();
  const int64_t B = cache.batch_size(), capacity = cache.capacity();
  GRANITE_CHECK(valid_.dim() == 2 && valid_.size(0) == B && valid_.size(1) == capacity,
                "static decoder: valid must be (", B, ", ", capacity, "), got ", valid_.sizes());
  const auto ids_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  slot_index_ = torch::arange(capacity, ids_opts);  // (Tmax)
  ids_ = torch::zeros({B, 1}, ids_opts);
  positions_ = torch::zeros({B, 1}, ids_opts);
  slot_ = torch::zeros({1}, ids_opts);
  use_graph_ = use_graph && device.is_cuda();
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
  return kernels::linear(h.select(1, 0), model_.lm_head_weight());  // (B, V)
}

torch::Tensor StaticDecoder::step(const std::vector<int64_t>& ids, int64_t slot,
                                  const std::vector<int64_t>& positions) {
  const int64_t B = ids_.size(0);
  GRANITE_CHECK(int64_t(ids.size()) == B && int64_t(positions.size()) == B, "static decoder: ", ids.size(),
                " ids and ", positions.size(), " positions for a batch of ", B);
  GRANITE_CHECK(slot >= 0 && slot < cache_.capacity(), "static decoder: slot ", slot, " outside the cache (",
                cache_.capacity(), ")");
  const auto cpu = torch::TensorOptions().dtype(torch::kInt64);
  ids_.copy_(torch::tensor(ids, cpu).view({B, 1}));
  positions_.copy_(torch::tensor(positions, cpu).view({B, 1}));
  slot_.fill_(slot);
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
