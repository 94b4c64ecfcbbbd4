#pragma once
// Data-parallel gradient synchronisation overlapped with backward, as PyTorch's DDP reducer does it: the flat fp32
// gradient buffers of ParameterBuffers are cut into buckets (~25 MB, at parameter boundaries, in reverse parameter
// order since backward produces the last layers' gradients first); during the backward of the last micro-batch of a
// step each parameter's hook counts down its bucket, and a complete bucket's all-reduce (SUM) starts at once while
// backward goes on. finish() starts what never completed (a parameter without a gradient this step) and waits.
// The sums are the same element-wise sums as one all-reduce after backward, so results do not change; only the
// communication moves under the computation.
#include <vector>

#include "granite/dist/communicator.h"
#include "granite/train/parameter_buffers.h"

namespace granite {

class GradientSync {
 public:
  GradientSync(ParameterBuffers& params, Communicator& comm, int64_t bucket_bytes = int64_t(25) << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Before each micro-batch's backward: `last` for the step's last micro-batch (the earlier ones only accumulate).
  void begin_micro_batch(bool last);
  // After the last backward: every bucket summed over the ranks.
  void finish();

  size_t buckets() const { return buckets_.size(); }
  // Buckets whose all-reduce started during the last step's backward (not in finish()): the overlap, for tests.
  size_t started_in_backward() const { return started_in_backward_; }

 private:
  struct Bucket {
    size_t group = 0;
    int64_t begin = 0, end = 0;  // element range of the group's flat gradient buffer
    size_t slots = 0;            // parameters in it
    size_t pending = 0;          // of those, still without their gradient this step
    bool started = false;
  };
  void on_ready(size_t group, size_t slot);
  void start(Bucket& bucket);

  ParameterBuffers& params_;
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::vector<std::vector<size_t>> bucket_of_;  // [group][slot] -> bucket index
  bool armed_ = false;
  size_t started_in_backward_ = 0;
};

}  // namespace granite
