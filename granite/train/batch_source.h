#pragma once
// Where a training run's batches come from: pretraining's packed loader (granite/data/packed_loader.h) or
// instruction tuning's (granite/instruct/instruct_loader.h). A source is resumable: state() after a batch is what
// continues exactly after it (stored in the checkpoint's training_state.json under "loader").
#include <memory>
#include <vector>

#include "granite/core/json.h"
#include "granite/data/packed_loader.h"

namespace granite {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual PackedBatch next() = 0;
  virtual Json state() const = 0;
};

}  // namespace granite
