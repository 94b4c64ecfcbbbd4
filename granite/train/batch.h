#pragma once
// A loader batch (granite/data/packed_loader.h) as the tensors a training step uses, and the attention mask that keeps
// the documents of a packed row apart.
#include <torch/types.h>

#include "granite/data/packed_loader.h"

namespace granite {

struct TrainBatch {
  torch::Tensor input_ids;     // (B, T) int64
  torch::Tensor labels;        // (B, T) int64, -100 where ignored (HF's ignore_index)
  torch::Tensor objectives;    // (B, T) uint8, granite::Objective of each label
  torch::Tensor position_ids;  // (B, T) int64, restarting at 0 for each document
  torch::Tensor segment_ids;   // (B, T) int64, the document of each token within its row
};

// Copies the batch into tensors on `device` (pinned staging is the caller's concern).
TrainBatch to_tensors(const PackedBatch& batch, const torch::Device& device = torch::kCPU);

// (B, 1, T, T) bool: true where query t may attend to key s, i.e. s <= t and both tokens belong to the same
// document. With the restarted position ids this makes a packed row compute exactly what each of its documents would
// alone (the "document masking" of Llama-3 and fms-fsdp's packed training). Broadcasts over heads.
torch::Tensor document_causal_mask(const torch::Tensor& segment_ids);

}  // namespace granite
