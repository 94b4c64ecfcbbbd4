#pragma once
// A streaming producer -> workers -> committer pipeline whose output order is the input order.
//   produce(item)  one thread: fills the next item; returns false when there are no more
//   process(item)  `workers` threads: the expensive, independent per-item work
//   commit(item)   the calling thread: consumes items strictly in production order, as soon as each is processed
// At most `window` items are between production and commit, and (optionally) at most `max_weight` of their weight
// (e.g. bytes of text), which bounds memory: a wide window of small items keeps every worker busy around a slow one. Unlike batches with a barrier, a
// slow item (a 1 MB file among 10 kB ones) holds up only its own commit, never idle workers, and committing overlaps
// processing, so the serial part (writing files) is off the critical path. The first exception from any stage stops
// the pipeline and is rethrown by run() once every thread has stopped.
// stats() says where the time went: how busy the producer, the workers and the committer were, so a user (and the
// benchmark) can see which of the three bounds throughput.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace granite {

// Seconds of one or more pipeline runs (they add up with +=).
struct PipelineStats {
  double seconds = 0;       // wall time of run()
  double produce_busy = 0;  // inside produce()
  double process_busy = 0;  // inside process(), summed over the workers
  double commit_busy = 0;   // inside commit()
  double worker_seconds = 0;  // workers x wall time: what process_busy is a fraction of
  PipelineStats& operator+=(const PipelineStats& o) {
    seconds += o.seconds, produce_busy += o.produce_busy, process_busy += o.process_busy;
    commit_busy += o.commit_busy, worker_seconds += o.worker_seconds;
    return *this;
  }
};

template <typename Item>
class OrderedPipeline {
 public:
  explicit OrderedPipeline(size_t window) : slots_(window), processed_(window, false), weights_(window, 0) {}
  // Also stops producing while the items in flight weigh `max_weight` or more (one item is always let through).
  OrderedPipeline(size_t window, size_t max_weight, std::function<size_t(const Item&)> weight)
      : OrderedPipeline(window) {
    max_weight_ = max_weight;
    weight_ = std::move(weight);
  }

  void run(int workers, const std::function<bool(Item&)>& produce, const std::function<void(Item&)>& process,
           const std::function<void(Item&)>& commit) {
    const auto start = Clock::now();
    workers = std::max(1, workers);
    std::thread producer([&] { guarded([&] { produce_loop(produce); }); });
    std::vector<std::thread> pool;
    std::vector<double> busy(size_t(workers), 0.0);  // per worker: no shared counter on the hot path
    for (int w = 0; w < workers; ++w)
      pool.emplace_back([&, w] { guarded([&] { work_loop(process, busy[size_t(w)]); }); });
    guarded([&] { commit_loop(commit); });
    stop();
    producer.join();
    for (auto& t : pool) t.join();
    stats_.seconds = seconds_since(start);
    for (double b : busy) stats_.process_busy += b;
    stats_.worker_seconds = stats_.seconds * workers;
    if (error_) std::rethrow_exception(error_);
  }

  const PipelineStats& stats() const { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  template <typename F>
  void guarded(F f) {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      stop_locked();
    }
  }

  void stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_locked();
  }

  void stop_locked() {
    stopped_ = true;
    space_.notify_all();
    work_.notify_all();
    ready_.notify_all();
  }

  void produce_loop(const std::function<bool(Item&)>& produce) {
    for (;;) {
      size_t slot;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] {
          return stopped_ ||
                 (produced_ - committed_ < slots_.size() && (in_flight_weight_ < max_weight_ || produced_ == committed_));
        });
        if (stopped_) return;
        slot = produced_ % slots_.size();
      }
      slots_[slot] = Item{};
      const auto t = Clock::now();
      const bool more = produce(slots_[slot]);  // the slot is free: committed, and no worker holds it
      stats_.produce_busy += seconds_since(t);
      const size_t weight = more && weight_ ? weight_(slots_[slot]) : 0;
      std::lock_guard<std::mutex> lock(mutex_);
      if (more) {
        weights_[slot] = weight;
        in_flight_weight_ += weight;
        ++produced_;
        work_.notify_one();
      } else {
        done_ = true;
        work_.notify_all();
        ready_.notify_all();
        return;
      }
    }
  }

  void work_loop(const std::function<void(Item&)>& process, double& busy) {
    for (;;) {
      uint64_t index;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_.wait(lock, [&] { return stopped_ || claimed_ < produced_ || done_; });
        if (stopped_ || (claimed_ == produced_ && done_)) return;
        index = claimed_++;
      }
      const auto t = Clock::now();
      process(slots_[index % slots_.size()]);
      busy += seconds_since(t);
      std::lock_guard<std::mutex> lock(mutex_);
      processed_[index % slots_.size()] = true;
      if (index == committed_) ready_.notify_one();  // only the item at the head of the line wakes the committer
    }
  }

  void commit_loop(const std::function<void(Item&)>& commit) {
    for (;;) {
      size_t slot;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        slot = committed_ % slots_.size();
        ready_.wait(lock, [&] { return stopped_ || processed_[slot] || (done_ && committed_ == produced_); });
        if (stopped_ || (done_ && committed_ == produced_ && !processed_[slot])) return;
      }
      const auto t = Clock::now();
      commit(slots_[slot]);
      stats_.commit_busy += seconds_since(t);
      std::lock_guard<std::mutex> lock(mutex_);
      processed_[slot] = false;
      in_flight_weight_ -= weights_[slot];
      ++committed_;
      space_.notify_one();
    }
  }

  std::vector<Item> slots_;
  std::vector<bool> processed_;
  std::vector<size_t> weights_;  // per slot, as produced
  size_t in_flight_weight_ = 0, max_weight_ = SIZE_MAX;
  std::function<size_t(const Item&)> weight_;
  uint64_t produced_ = 0, claimed_ = 0, committed_ = 0;
  bool done_ = false, stopped_ = false;
  std::mutex mutex_;
  // One condition per waiter kind, each notified only when its wait can end (no herd of 16 workers woken per item).
  std::condition_variable space_;  // the producer: a slot was committed
  std::condition_variable work_;   // workers: an item was produced, or production ended
  std::condition_variable ready_;  // the committer: the head-of-line item was processed, or production ended
  std::exception_ptr error_;
  PipelineStats stats_;  // produce_busy: producer thread only; commit_busy: committer only; the rest after joining
};

}  // namespace granite
