#include "granite/dist/communicator.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdio>
#include <mutex>

#include "granite/core/check.h"
#include "granite/core/compat.h"

// Gloo (CPU collectives): LibTorch ships it compiled in; its headers come with libgloo-dev (Debian) or the wheel.
#if __has_include(<gloo/algorithm.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define GRANITE_HAS_GLOO 1
#else
#define GRANITE_HAS_GLOO 0
#endif

// NCCL (CUDA collectives): CUDA builds of LibTorch with nccl.h on the include path (scripts/gpu.sh).
#if GRANITE_WITH_CUDA && __has_include(<nccl.h>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define GRANITE_HAS_NCCL 1
#else
#define GRANITE_HAS_NCCL 0
#endif

namespace granite {

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GRANITE_C10D_BACKEND> group;
  std::mutex started_mutex;
  std::vector<c10::intrusive_ptr<c10d::Work>> started;
};

namespace {

std::string describe(const LaunchEnv& e) {
  return "rank " + std::to_string(e.rank) + " of " + std::to_string(e.world_size) + " (" + e.master_addr + ":" +
         std::to_string(e.master_port) + ")";
}

// c10::Error messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

torch::Device rank_device(const std::string& configured, const LaunchEnv& env) {
  const torch::Device device(configured);
  return device.is_cuda() && !device.has_index() ? torch::Device(torch::kCUDA, c10::DeviceIndex(env.local_rank))
                                                 : device;
}

Communicator::Communicator(const LaunchEnv& env, const torch::Device& device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()), env_(env), device_(device), timeout_(timeout) {
  if (device.is_cuda()) {
#if !GRANITE_HAS_NCCL
    GRANITE_FAIL("this build of granite has no NCCL (CUDA LibTorch with nccl.h at build time): cannot run ",
                 "distributed training on ", device);
#endif
  } else {
#if !GRANITE_HAS_GLOO
    GRANITE_FAIL("this build of granite has no Gloo (gloo headers at build time): cannot run distributed training ",
                 "on the CPU");
#endif
  }
  // The rendezvous (the store, then the backend's connections to every peer) waits at most `timeout`.
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = uint16_t(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = size_t(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    if (device.is_cuda()) {
#if GRANITE_HAS_NCCL
      c10::cuda::set_device(c10::DeviceIndex(device.has_index() ? device.index() : env.local_rank));
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, options);
      backend_name_ = "nccl";
#endif
    } else {
#if GRANITE_HAS_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, options);
      backend_name_ = "gloo";
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    GRANITE_FAIL(describe(env), ": the ranks did not all join within ", timeout.count() / 1000,
                 " s (a rank failed to start, or MASTER_ADDR/MASTER_PORT differ): ", first_line(e.what()));
  }
}

Communicator::~Communicator() {
#if GRANITE_HAS_NCCL && GRANITE_HAS_NCCL_SHUTDOWN
  // NCCL's communicators are torn down explicitly (what destroy_process_group does in Python); then the process
  // group's destructor joins its threads.
  if (backend_name_ == "nccl" && impl_->group) {
    try {
      static_cast<c10d::ProcessGroupNCCL*>(impl_->group.get())->shutdown();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: NCCL shutdown: %s\n", describe(env_).c_str(), first_line(e.what()).c_str());
    }
  }
#endif
}

namespace {

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works, const char* what, const LaunchEnv& env,
              std::chrono::milliseconds timeout) {
  try {
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    GRANITE_FAIL(describe(env), ": ", what, " failed -- another rank stopped or did not arrive within ",
                 timeout.count() / 1000, " s: ", first_line(e.what()));
  }
}

}  // namespace

void Communicator::all_reduce_sum(const std::vector<torch::Tensor>& tensors, const char* what) {
  for (const torch::Tensor& t : tensors) start_all_reduce_sum(t);
  wait_started(what);
}

void Communicator::start_all_reduce_sum(const torch::Tensor& tensor) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  std::vector<at::Tensor> one{tensor};  // one tensor per call (NCCL's rule)
  std::lock_guard<std::mutex> lock(impl_->started_mutex);
  impl_->started.push_back(impl_->group->allreduce(one, options));
}

void Communicator::wait_started(const char* what) {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  {
    std::lock_guard<std::mutex> lock(impl_->started_mutex);
    works.swap(impl_->started);
  }
  wait_all(works, what, env_, timeout_);
}

void Communicator::broadcast(const torch::Tensor& tensor, int root, const char* what) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  std::vector<at::Tensor> one{tensor};
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->group->broadcast(one, options)};
  wait_all(works, what, env_, timeout_);
}

void Communicator::all_gather_shards(const torch::Tensor& flat, const char* what) {
  GRANITE_CHECK(flat.dim() == 1 && flat.numel() % env_.world_size == 0, what, ": ", flat.numel(),
                " elements do not split into ", env_.world_size, " equal shards");
  const int64_t shard = flat.numel() / env_.world_size;
  // Moving data only, so 16-bit floats travel as bytes: Gloo has no bf16 (or int16) collectives.
  const bool half = flat.scalar_type() == torch::kBFloat16 || flat.scalar_type() == torch::kHalf;
  if (half && backend_name_ != "nccl") return all_gather_shards(flat.view(torch::kByte), what);
  std::vector<at::Tensor> input{flat.narrow(0, env_.rank * shard, shard).clone()};  // not aliasing the outputs
#if GRANITE_HAS_NCCL
  if (backend_name_ == "nccl") {  // straight into the flat buffer (the list form stages through a copy)
    at::Tensor output = flat;
    std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->group->_allgather_base(output, input[0])};
    return wait_all(works, what, env_, timeout_);
  }
#endif
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < env_.world_size; ++r) outputs[0].push_back(flat.narrow(0, r * shard, shard));
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->group->allgather(outputs, input)};
  wait_all(works, what, env_, timeout_);
}

void Communicator::reduce_scatter_sum(const torch::Tensor& full, const torch::Tensor& shard, const char* what) {
  GRANITE_CHECK(full.dim() == 1 && shard.dim() == 1 && full.numel() == shard.numel() * env_.world_size, what, ": ",
                full.numel(), " elements do not split into ", env_.world_size, " shards of ", shard.numel());
#if GRANITE_HAS_NCCL
  if (backend_name_ == "nccl") {
    c10d::ReduceScatterOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    at::Tensor output = shard, input = full;
    std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->group->_reduce_scatter_base(output, input, options)};
    return wait_all(works, what, env_, timeout_);
  }
#endif
  all_reduce_sum({full}, what);
  shard.copy_(full.narrow(0, env_.rank * shard.numel(), shard.numel()));
}

void Communicator::barrier(const char* what) { sum({0.0}, what); }

std::vector<double> Communicator::sum(const std::vector<double>& values, const char* what) {
  auto t = torch::tensor(values, torch::TensorOptions().dtype(torch::kDouble)).to(device_);
  all_reduce_sum({t}, what);
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

}  // namespace granite
