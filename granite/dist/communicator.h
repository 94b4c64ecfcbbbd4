#pragma once
// The collectives a data-parallel run needs, over PyTorch's c10d process groups driven from C++ (LibTorch has the
// process groups but no DistributedDataParallel): a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 serves
// it), then Gloo for CPU tensors or NCCL for CUDA tensors. Every c10d include stays in communicator.cpp (its headers
// change between releases; the one difference we meet is in core/compat.h).
// A collective that does not finish within the timeout -- a rank died or hangs -- is an error naming the operation,
// this rank and the timeout, so the surviving ranks stop instead of waiting forever.
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "granite/dist/launch_env.h"

namespace granite {

// The device a rank trains on: `configured` ("cpu", "cuda", "cuda:N"); a bare "cuda" means this node's GPU
// LOCAL_RANK (one process per GPU).
torch::Device rank_device(const std::string& configured, const LaunchEnv& env);

class Communicator {
 public:
  // Joins the job; blocks until every rank has joined (or the timeout passes). `device`: cpu -> Gloo, cuda -> NCCL
  // (CUDA builds of LibTorch with NCCL only).
  Communicator(const LaunchEnv& env, const torch::Device& device,
               std::chrono::milliseconds timeout = std::chrono::minutes(10));
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const LaunchEnv& env() const { return env_; }
  const std::string& backend() const { return backend_name_; }

  // Sums each tensor over the ranks, in place (all started, then every started one waited for).
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, const char* what = "all_reduce");
  // Starts summing `tensor` over the ranks in place and returns at once (any thread: the backward hooks call it);
  // wait_started() waits for every one started so far. Ranks must start the same tensors in the same order.
  void start_all_reduce_sum(const torch::Tensor& tensor);
  void wait_started(const char* what = "all_reduce");
  void broadcast(const torch::Tensor& tensor, int root, const char* what = "broadcast");
  // `flat` (1-D) is world_size equal shards, rank r owning shard r: afterwards every rank holds every shard.
  void all_gather_shards(const torch::Tensor& flat, const char* what = "all_gather");
  // `full` (1-D) is world_size equal shards: `shard` (one shard's length) receives this rank's shard of the sum of
  // every rank's `full` (what the fully sharded mode does with each unit's gradients). `full` may be clobbered
  // (Gloo, which has no reduce-scatter in LibTorch 1.13, sums all of it in place and keeps this rank's part).
  void reduce_scatter_sum(const torch::Tensor& full, const torch::Tensor& shard, const char* what = "reduce_scatter");
  void barrier(const char* what = "barrier");
  // The sum over ranks of host values (an all_reduce of one small tensor).
  std::vector<double> sum(const std::vector<double>& values, const char* what = "all_reduce");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  LaunchEnv env_;
  torch::Device device_;
  std::string backend_name_;
  std::chrono::milliseconds timeout_;
};

}  // namespace granite
