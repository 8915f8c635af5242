// TfResattn>BucketSort: the GPU functor (launches cuda/bucket_sort_kernels.cuh).

#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"
#include "custom_ops/lsh_sort/cuda/bucket_sort_kernels.cuh"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace functor {

int64_t BucketSort<Eigen::GpuDevice>::operator()(
    const Eigen::GpuDevice& device, const int32_t* buckets, int64_t rows,
    int64_t length, int32_t num_buckets, int32_t* scratch,
    int32_t* permutation, int32_t* inverse) const {
  const cudaError_t status = lsh_bucket_sort_launch(
      device.stream(), buckets, rows, length, num_buckets,
      kBucketSortGpuWarpsPerRow, scratch, permutation, inverse);
  return status == cudaSuccess ? -1 : kGpuLaunchFailed;
}

}  // namespace functor
}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // GOOGLE_CUDA
