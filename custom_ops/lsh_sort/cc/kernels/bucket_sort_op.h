// Kernel functor of TfResattn>BucketSort, templated on the device.
//
// Each of `rows` rows of `length` int32 bucket ids is sorted stably by a
// counting sort: `permutation[r, j]` is the position of the j-th token in
// (bucket, position) order and `inverse[r, permutation[r, j]] == j`.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_BUCKET_SORT_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_BUCKET_SORT_OP_H_

#include <cstdint>

namespace Eigen {
struct ThreadPoolDevice;
struct GpuDevice;
}  // namespace Eigen

namespace tensorflow {
namespace tf_resattn {
namespace functor {

// Returned by the GPU functors when a kernel launch failed.
constexpr int64_t kGpuLaunchFailed = -2;

// Warps that share one row in the CUDA kernels (one thread block per row).
constexpr int kBucketSortGpuWarpsPerRow = 8;

template <typename Device>
struct BucketSort;

template <>
struct BucketSort<Eigen::ThreadPoolDevice> {
  // No scratch memory on the CPU.
  static int64_t ScratchSize(int64_t rows, int32_t num_buckets) { return 0; }

  // Rows run in parallel on the device's thread pool. Returns the flat index
  // of the first bucket id outside [0, num_buckets), or -1 when all are valid.
  int64_t operator()(const Eigen::ThreadPoolDevice& device,
                     const int32_t* buckets, int64_t rows, int64_t length,
                     int32_t num_buckets, int32_t* scratch,
                     int32_t* permutation, int32_t* inverse) const;
};

#if GOOGLE_CUDA
template <>
struct BucketSort<Eigen::GpuDevice> {
  // Per-row, per-warp bucket counts.
  static int64_t ScratchSize(int64_t rows, int32_t num_buckets) {
    return rows * kBucketSortGpuWarpsPerRow * static_cast<int64_t>(num_buckets);
  }

  // Ids outside [0, num_buckets) are clamped into range (no host round trip
  // to validate them); returns -1, or kGpuLaunchFailed.
  int64_t operator()(const Eigen::GpuDevice& device, const int32_t* buckets,
                     int64_t rows, int64_t length, int32_t num_buckets,
                     int32_t* scratch, int32_t* permutation,
                     int32_t* inverse) const;
};
#endif  // GOOGLE_CUDA

}  // namespace functor
}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_BUCKET_SORT_OP_H_
