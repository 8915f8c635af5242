// Kernel functor of TfResattn>PermuteGather, templated on the device.
//
// y[r, i, :] = x[r, permutation[r, i], :] for `rows` rows of `length` vectors
// of `depth` elements. The gather only moves elements, so `T` is a storage
// type of the element's width (float for float32, uint16_t for float16 and
// bfloat16).

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_PERMUTE_GATHER_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_PERMUTE_GATHER_OP_H_

#include <cstdint>

// Eigen's device declarations and kGpuLaunchFailed.
#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"

namespace tensorflow {
namespace tf_resattn {
namespace functor {

template <typename Device, typename T>
struct PermuteGather;

template <typename T>
struct PermuteGather<Eigen::ThreadPoolDevice, T> {
  // Returns the flat index (r * length + i) of the first permutation entry
  // outside [0, length), or -1 when all are valid; invalid rows are zeroed.
  int64_t operator()(const Eigen::ThreadPoolDevice& device, const T* x,
                     const int32_t* permutation, int64_t rows, int64_t length,
                     int64_t depth, T* y) const;
};

#if GOOGLE_CUDA
template <typename T>
struct PermuteGather<Eigen::GpuDevice, T> {
  // Invalid permutation entries give zero rows (like tf.gather on GPU);
  // returns -1, or kGpuLaunchFailed (bucket_sort_op.h).
  int64_t operator()(const Eigen::GpuDevice& device, const T* x,
                     const int32_t* permutation, int64_t rows, int64_t length,
                     int64_t depth, T* y) const;
};
#endif  // GOOGLE_CUDA

}  // namespace functor
}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_PERMUTE_GATHER_OP_H_
