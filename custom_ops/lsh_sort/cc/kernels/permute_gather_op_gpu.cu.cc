// TfResattn>PermuteGather: the GPU functor (launches cuda/permute_gather_kernels.cuh).

#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include "custom_ops/lsh_sort/cc/kernels/permute_gather_op.h"
#include "custom_ops/lsh_sort/cuda/permute_gather_kernels.cuh"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace functor {

template <typename T>
int64_t PermuteGather<Eigen::GpuDevice, T>::operator()(
    const Eigen::GpuDevice& device, const T* x, const int32_t* permutation,
    int64_t rows, int64_t length, int64_t depth, T* y) const {
  const cudaError_t status = lsh_permute_gather_launch<T>(
      device.stream(), x, permutation, rows, length, depth, y);
  return status == cudaSuccess ? -1 : kGpuLaunchFailed;
}

template struct PermuteGather<Eigen::GpuDevice, float>;
template struct PermuteGather<Eigen::GpuDevice, uint16_t>;

}  // namespace functor
}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // GOOGLE_CUDA
