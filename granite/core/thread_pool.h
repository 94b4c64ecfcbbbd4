#pragma once
// A fixed set of worker threads for data-parallel loops (data preparation, tokenization). parallel_for hands out
// indices dynamically (documents differ in size by orders of magnitude, so static slices would idle threads) and
// rethrows the first exception a task raised, after every task has stopped.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace granite {

class ThreadPool {
 public:
  // threads <= 0: the hardware concurrency. The calling thread works too, so `threads` is the total.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return int(workers_.size()) + 1; }
  // Calls body(i) for every i in [0, n), spread over the threads; returns when all are done. Not reentrant.
  void parallel_for(int64_t n, const std::function<void(int64_t)>& body);

 private:
  void work();
  void worker_loop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* body_ = nullptr;
  int64_t n_ = 0, next_ = 0;
  int busy_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace granite
