#include "granite/dist/gradient_sync.h"

#include "granite/core/check.h"

namespace granite {

GradientSync::GradientSync(ParameterBuffers& params, Communicator& comm, int64_t bucket_bytes)
    : params_(params), comm_(comm) {
  GRANITE_CHECK(!params.is_fully_sharded(), "fully sharded parameters reduce-scatter their own gradients; ",
                "GradientSync is for replicated ones");
  const auto& groups = params_.groups();
  bucket_of_.resize(groups.size());
  // Reverse order within each group (later groups first: the no-decay group holds the embeddings, whose gradient
  // comes last): buckets fill in the order backward completes them.
  for (size_t g = groups.size(); g-- > 0;) {
    const auto& slots = groups[g].slots;
    bucket_of_[g].resize(slots.size());
    const int64_t element_bytes = groups[g].grad.element_size();
    for (size_t i = slots.size(); i-- > 0;) {
      const bool open = !buckets_.empty() && buckets_.back().group == g &&
                        (buckets_.back().end - buckets_.back().begin) * element_bytes < bucket_bytes;
      if (!open) buckets_.push_back({g, slots[i].offset + slots[i].numel, slots[i].offset + slots[i].numel, 0, 0, false});
      Bucket& b = buckets_.back();
      b.begin = slots[i].offset;  // slots are contiguous: extending downwards
      ++b.slots;
      bucket_of_[g][i] = buckets_.size() - 1;
    }
  }
  params_.on_gradient_ready([this](size_t group, size_t slot) { on_ready(group, slot); });
}

GradientSync::~GradientSync() { params_.on_gradient_ready({}); }

void GradientSync::begin_micro_batch(bool last) {
  armed_ = last;
  if (!last) return;
  started_in_backward_ = 0;
  for (Bucket& b : buckets_) {
    b.pending = b.slots;
    b.started = false;
  }
}

void GradientSync::on_ready(size_t group, size_t slot) {
  if (!armed_) return;
  Bucket& b = buckets_[bucket_of_[group][slot]];
  GRANITE_CHECK(b.pending > 0, "gradient of ", params_.groups()[group].slots[slot].name,
                " arrived twice in one backward");
  if (--b.pending == 0) {
    start(b);
    ++started_in_backward_;
  }
}

void GradientSync::start(Bucket& b) {
  b.started = true;
  comm_.start_all_reduce_sum(params_.groups()[b.group].grad.narrow(0, b.begin, b.end - b.begin));
}

void GradientSync::finish() {
  armed_ = false;
  // Buckets start in the same order on every rank only if backward completes them in the same order, which it
  // does for the same model and graph; those left (unused parameters) start here, in bucket order.
  for (Bucket& b : buckets_)
    if (!b.started) start(b);
  comm_.wait_started("gradient all-reduce");
}

}  // namespace granite
