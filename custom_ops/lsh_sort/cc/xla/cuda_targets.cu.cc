// XLA custom-call targets for the CUDA platform (CUDA build only): the bucket
// sort and the permutation gather, launched on XLA's stream by the GPU
// functors of the op kernels (cc/kernels/*_op_gpu.cu.cc). The hash and the chunk
// attention have no CUDA kernels; on a GPU the layers compose them from
// these two and `keras.ops`, which XLA compiles.
//
//   tf_resattn_bucket_sort    (buckets [N, L]) "N L num_buckets"
//       -> (permutation, inverse) int32 [N, L]
//   tf_resattn_permute_gather (x [N, L, D], permutation [N, L])
//       "N L D element_bytes" -> y [N, L, D]
//
// As on the GPU op kernels, ids outside [0, num_buckets) are clamped and
// permutation entries outside [0, L) give zero rows (no host round trip).

#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"
#include "custom_ops/lsh_sort/cc/kernels/permute_gather_op.h"
#include "custom_ops/lsh_sort/cc/xla/custom_call.h"
#include "unsupported/Eigen/CXX11/Tensor"
#include "xla/service/custom_call_target_registry.h"

namespace tensorflow {
namespace tf_resattn {
namespace {

void FailOnCudaError(XlaCustomCallStatus* status, const char* what,
                     cudaError_t error) {
  if (error != cudaSuccess) {
    SetFailure(status, std::string(what) + ": " + cudaGetErrorString(error));
  }
}

void FailOnLaunchError(XlaCustomCallStatus* status, const char* what,
                       int64_t result) {
  if (result == functor::kGpuLaunchFailed) {
    SetFailure(status, std::string(what) + ": the CUDA kernel launch failed");
  }
}

// Buffers: buckets, then permutation and inverse. The per-row, per-warp
// counts are scratch of the stream's memory pool, freed in stream order.
void BucketSortCuda(cudaStream_t stream, void** buffers, const char* opaque,
                    size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t config[3];
  if (!ReadConfig(opaque, opaque_len, 3, config)) {
    return SetFailure(status, "tf_resattn_bucket_sort: bad backend config");
  }
  const auto [rows, length, num_buckets] = config;
  using Sort = functor::BucketSort<Eigen::GpuDevice>;
  const int64_t counts =
      Sort::ScratchSize(rows, static_cast<int32_t>(num_buckets));
  void* scratch = nullptr;
  const cudaError_t error =
      cudaMallocAsync(&scratch, sizeof(int32_t) * counts, stream);
  if (error != cudaSuccess) {
    return FailOnCudaError(status, "tf_resattn_bucket_sort", error);
  }
  Eigen::GpuStreamDevice stream_device(&stream);
  const Eigen::GpuDevice device(&stream_device);
  FailOnLaunchError(
      status, "tf_resattn_bucket_sort",
      Sort()(device, static_cast<const int32_t*>(buffers[0]), rows, length,
             static_cast<int32_t>(num_buckets),
             static_cast<int32_t*>(scratch), static_cast<int32_t*>(buffers[1]),
             static_cast<int32_t*>(buffers[2])));
  FailOnCudaError(status, "tf_resattn_bucket_sort",
                  cudaFreeAsync(scratch, stream));
}

// Buffers: x, permutation, then y.
void PermuteGatherCuda(cudaStream_t stream, void** buffers, const char* opaque,
                       size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t config[4];
  if (!ReadGatherConfig(opaque, opaque_len, config)) {
    return SetFailure(status, "tf_resattn_permute_gather: bad backend config");
  }
  const auto [rows, length, depth, element_bytes] = config;
  const int32_t* permutation = static_cast<const int32_t*>(buffers[1]);
  Eigen::GpuStreamDevice stream_device(&stream);
  const Eigen::GpuDevice device(&stream_device);
  FailOnLaunchError(
      status, "tf_resattn_permute_gather",
      element_bytes == 4
          ? functor::PermuteGather<Eigen::GpuDevice, float>()(
                device, static_cast<const float*>(buffers[0]), permutation,
                rows, length, depth, static_cast<float*>(buffers[2]))
          : functor::PermuteGather<Eigen::GpuDevice, uint16_t>()(
                device, static_cast<const uint16_t*>(buffers[0]), permutation,
                rows, length, depth, static_cast<uint16_t*>(buffers[2])));
}

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow

XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_bucket_sort", tensorflow::tf_resattn::BucketSortCuda, "CUDA");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_permute_gather", tensorflow::tf_resattn::PermuteGatherCuda,
    "CUDA");

#endif  // GOOGLE_CUDA
