// The two ways work is spread over threads: ThreadPool::parallel_for (a barrier per loop) and OrderedPipeline
// (streaming, output in input order).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "granite/core/ordered_pipeline.h"
#include "granite/core/thread_pool.h"

using namespace granite;

TEST_CASE("thread pool runs every index once and rethrows a task's error", "[core][threads]") {
  ThreadPool pool(4);
  CHECK(pool.threads() == 4);
  for (int round = 0; round < 50; ++round) {
    std::vector<int> hits(1000, 0);
    pool.parallel_for(1000, [&](int64_t i) { hits[size_t(i)]++; });
    CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
  }
  REQUIRE_THROWS_WITH(pool.parallel_for(100,
                                        [](int64_t i) {
                                          if (i == 37) throw std::runtime_error("task 37 failed");
                                        }),
                      "task 37 failed");
  int64_t sum = 0;
  std::mutex m;
  pool.parallel_for(10, [&](int64_t i) {
    std::lock_guard<std::mutex> lock(m);
    sum += i;
  });
  CHECK(sum == 45);  // usable again after an error
}

TEST_CASE("ordered pipeline commits every item in production order, with at most `window` in flight",
          "[core][threads]") {
  for (int workers : {1, 3, 8}) {
    struct Item {
      int value = -1, squared = -1;
    };
    int next = 0;
    std::atomic<int> in_flight{0}, max_in_flight{0};
    std::vector<int> committed;
    OrderedPipeline<Item> pipeline(16);
    pipeline.run(
        workers,
        [&](Item& item) {
          if (next == 2000) return false;
          item.value = next++;
          int now = ++in_flight;
          int seen = max_in_flight.load();
          while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
          }
          return true;
        },
        [&](Item& item) {
          // Uneven work: every 97th item is slow, so later items finish first.
          if (item.value % 97 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
          item.squared = item.value * item.value;
        },
        [&](Item& item) {
          --in_flight;
          REQUIRE(item.squared == item.value * item.value);
          committed.push_back(item.value);
        });
    REQUIRE(committed.size() == 2000);
    for (int i = 0; i < 2000; ++i) REQUIRE(committed[size_t(i)] == i);
    CHECK(max_in_flight.load() <= 16);
  }
}

TEST_CASE("ordered pipeline stops on the first error of any stage and rethrows it", "[core][threads]") {
  struct Item {
    int value = 0;
  };
  auto run = [](int fail_produce, int fail_process, int fail_commit) {
    int next = 0, commits = 0;
    OrderedPipeline<Item> pipeline(8);
    pipeline.run(
        4,
        [&](Item& item) {
          if (next == fail_produce) throw std::runtime_error("produce failed");
          item.value = next++;
          return true;  // endless: only an error ends this run
        },
        [&](Item& item) {
          if (item.value == fail_process) throw std::runtime_error("process failed");
        },
        [&](Item& item) {
          if (item.value == fail_commit) throw std::runtime_error("commit failed");
          ++commits;
        });
    return commits;
  };
  REQUIRE_THROWS_WITH(run(50, -1, -1), "produce failed");
  REQUIRE_THROWS_WITH(run(-1, 30, -1), "process failed");
  REQUIRE_THROWS_WITH(run(-1, -1, 10), "commit failed");
}

TEST_CASE("ordered pipeline stats name the role that bounds it", "[core][threads]") {
  // Each run makes one role sleep per item; that role is busy nearly all the wall time, the others hardly at all.
  using std::chrono::milliseconds;
  auto run = [](int slow_role) {
    OrderedPipeline<int> pipeline(8);
    int next = 0;
    pipeline.run(
        2,
        [&](int& item) {
          if (slow_role == 0) std::this_thread::sleep_for(milliseconds(3));
          item = next++;
          return next <= 40;
        },
        [&](int&) {
          if (slow_role == 1) std::this_thread::sleep_for(milliseconds(6));
        },
        [&](int&) {
          if (slow_role == 2) std::this_thread::sleep_for(milliseconds(3));
        });
    return pipeline.stats();
  };
  const PipelineStats producer = run(0), workers = run(1), committer = run(2);
  CHECK(producer.produce_busy / producer.seconds > 0.7);
  CHECK(producer.commit_busy / producer.seconds < 0.3);
  CHECK(workers.process_busy / workers.worker_seconds > 0.7);
  CHECK(workers.produce_busy / workers.seconds < 0.3);
  CHECK(committer.commit_busy / committer.seconds > 0.7);
  CHECK(committer.process_busy / committer.worker_seconds < 0.3);
  CHECK(committer.worker_seconds == Approx(2 * committer.seconds));
  PipelineStats sum = producer;
  sum += committer;
  CHECK(sum.seconds == Approx(producer.seconds + committer.seconds));
}

TEST_CASE("ordered pipeline bounds the weight in flight", "[core][threads]") {
  // Items weigh 1..5; at most 10 may be in flight before the producer waits, so the weight between production and
  // commit never exceeds 10 + 5 (the last item let through) however wide the window is.
  OrderedPipeline<int> pipeline(1000, 10, [](const int& item) { return size_t(item % 5 + 1); });
  std::atomic<int> in_flight{0}, most{0};
  int next = 0;
  std::vector<int> committed;
  pipeline.run(
      4,
      [&](int& item) {
        if (next == 2000) return false;
        item = next++;
        const int now = in_flight += item % 5 + 1;
        for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        return true;
      },
      [](int&) { std::this_thread::sleep_for(std::chrono::microseconds(20)); },
      [&](int& item) {
        committed.push_back(item);
        in_flight -= item % 5 + 1;
      });
  REQUIRE(committed.size() == 2000);
  for (int i = 0; i < 2000; ++i) REQUIRE(committed[size_t(i)] == i);
  CHECK(most.load() <= 14);
  CHECK(most.load() >= 10);  // the limit, not the window, is what held the producer back
}
