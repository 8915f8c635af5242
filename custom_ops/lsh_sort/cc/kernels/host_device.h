// The CPU kernels' thread pool and scratch buffers, for callers that run the
// kernels outside a TensorFlow op (the TF-XLA custom-call targets of
// cc/xla/host_targets.cc and the JAX FFI handlers of cc/jax/ffi_targets.cc).
// Eigen only: no TensorFlow header, so the JAX build can include it.
#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_HOST_DEVICE_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_HOST_DEVICE_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#ifndef EIGEN_USE_THREADS
#define EIGEN_USE_THREADS
#endif
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {

// The CPUs this process may run on.
inline int AvailableCpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// The kernels' thread pool, one thread per available CPU, made on first use
// and kept for the life of the process (one per library that includes this).
inline const Eigen::ThreadPoolDevice& HostDevice() {
  static const Eigen::ThreadPoolDevice* device = [] {
    const int threads = AvailableCpus();
    return new Eigen::ThreadPoolDevice(new Eigen::ThreadPool(threads), threads);
  }();
  return *device;
}

// A float buffer of `floats` (at least one), 64-byte aligned as the kernels expect.
using AlignedFloats = std::unique_ptr<float, decltype(&std::free)>;
inline AlignedFloats AllocateFloats(int64_t floats) {
  const size_t bytes =
      (sizeof(float) * std::max<int64_t>(floats, 1) + 63) / 64 * 64;
  return AlignedFloats(static_cast<float*>(std::aligned_alloc(64, bytes)),
                       &std::free);
}

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_HOST_DEVICE_H_
