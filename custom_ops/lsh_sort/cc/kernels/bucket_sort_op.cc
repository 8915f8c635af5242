// TfResattn>BucketSort: the op kernel and its CPU functor.

#define EIGEN_USE_THREADS

#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <numeric>
#include <vector>

#ifndef TF_RESATTN_KERNELS_ONLY
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#endif  // TF_RESATTN_KERNELS_ONLY
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {

using CPUDevice = Eigen::ThreadPoolDevice;
using GPUDevice = Eigen::GpuDevice;

namespace {

// Lowers `*first` to `candidate` (thread safe).
void KeepSmallest(std::atomic<int64_t>* first, int64_t candidate) {
  int64_t current = first->load();
  while ((current < 0 || candidate < current) &&
         !first->compare_exchange_weak(current, candidate)) {
  }
}

// Stable counting sort of one row; `counts` holds num_buckets entries.
// Returns the index of the first invalid id in the row, or -1.
int64_t CountingSortRow(const int32_t* ids, int64_t length, int32_t num_buckets,
                        int32_t* counts, int32_t* permutation,
                        int32_t* inverse) {
  std::fill(counts, counts + num_buckets, 0);
  for (int64_t i = 0; i < length; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= num_buckets) return i;
    ++counts[id];
  }
  int32_t start = 0;
  for (int32_t b = 0; b < num_buckets; ++b) {
    const int32_t count = counts[b];
    counts[b] = start;
    start += count;
  }
  for (int64_t i = 0; i < length; ++i) {
    const int32_t position = counts[ids[i]]++;
    permutation[position] = static_cast<int32_t>(i);
    inverse[i] = position;
  }
  return -1;
}

// Stable comparison sort of one row, for bucket counts far above the row
// length (where clearing a count array per row would dominate).
int64_t ComparisonSortRow(const int32_t* ids, int64_t length,
                          int32_t num_buckets, int32_t* permutation,
                          int32_t* inverse) {
  for (int64_t i = 0; i < length; ++i) {
    if (ids[i] < 0 || ids[i] >= num_buckets) return i;
  }
  std::iota(permutation, permutation + length, 0);
  std::stable_sort(permutation, permutation + length,
                   [ids](int32_t a, int32_t b) { return ids[a] < ids[b]; });
  for (int64_t j = 0; j < length; ++j) {
    inverse[permutation[j]] = static_cast<int32_t>(j);
  }
  return -1;
}

}  // namespace

namespace functor {

int64_t BucketSort<CPUDevice>::operator()(
    const CPUDevice& device, const int32_t* buckets, int64_t rows,
    int64_t length, int32_t num_buckets, int32_t* /*scratch*/,
    int32_t* permutation, int32_t* inverse) const {
  const bool counting = num_buckets <= 2 * length + 1024;
  std::atomic<int64_t> first_invalid(-1);
  auto sort_rows = [&](Eigen::Index begin, Eigen::Index end) {
    std::vector<int32_t> counts(counting ? num_buckets : 0);
    for (Eigen::Index row = begin; row < end; ++row) {
      const int64_t offset = row * length;
      const int64_t invalid =
          counting ? CountingSortRow(buckets + offset, length, num_buckets,
                                     counts.data(), permutation + offset,
                                     inverse + offset)
                   : ComparisonSortRow(buckets + offset, length, num_buckets,
                                       permutation + offset, inverse + offset);
      if (invalid >= 0) KeepSmallest(&first_invalid, offset + invalid);
    }
  };
  const Eigen::TensorOpCost cost_per_row(
      /*bytes_loaded=*/8.0 * length, /*bytes_stored=*/8.0 * length,
      /*compute_cycles=*/6.0 * length);
  device.parallelFor(rows, cost_per_row, sort_rows);
  return first_invalid.load();
}

}  // namespace functor

#ifndef TF_RESATTN_KERNELS_ONLY

template <typename Device>
class BucketSortOp : public OpKernel {
 public:
  explicit BucketSortOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& buckets = context->input(0);
    const Tensor& num_buckets_tensor = context->input(1);
    OP_REQUIRES(context, buckets.dims() == 2,
                errors::InvalidArgument(
                    "bucket_sort: `buckets` must have rank 2 [N, L], got shape ",
                    buckets.shape().DebugString()));
    OP_REQUIRES(context, TensorShapeUtils::IsScalar(num_buckets_tensor.shape()),
                errors::InvalidArgument(
                    "bucket_sort: `num_buckets` must be a scalar, got shape ",
                    num_buckets_tensor.shape().DebugString()));
    const int32_t num_buckets = num_buckets_tensor.scalar<int32>()();
    OP_REQUIRES(context, num_buckets >= 1,
                errors::InvalidArgument(
                    "bucket_sort: `num_buckets` must be at least 1, got ",
                    num_buckets));
    const int64_t rows = buckets.dim_size(0);
    const int64_t length = buckets.dim_size(1);
    OP_REQUIRES(context, length <= std::numeric_limits<int32_t>::max(),
                errors::InvalidArgument(
                    "bucket_sort: rows of `buckets` are too long for int32 "
                    "positions (L = ", length, ")"));

    Tensor* permutation = nullptr;
    Tensor* inverse = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, buckets.shape(), &permutation));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, buckets.shape(), &inverse));
    if (rows == 0 || length == 0) return;

    Tensor scratch;
    const int64_t scratch_size =
        functor::BucketSort<Device>::ScratchSize(rows, num_buckets);
    OP_REQUIRES_OK(context,
                   context->allocate_temp(DT_INT32, TensorShape({scratch_size}),
                                          &scratch));
    const int64_t invalid = functor::BucketSort<Device>()(
        context->eigen_device<Device>(), buckets.flat<int32>().data(), rows,
        length, num_buckets, scratch.flat<int32>().data(),
        permutation->flat<int32>().data(), inverse->flat<int32>().data());
    OP_REQUIRES(context, invalid != functor::kGpuLaunchFailed,
                errors::Internal("bucket_sort: the CUDA kernel launch failed"));
    OP_REQUIRES(context, invalid < 0,
                errors::InvalidArgument(
                    "bucket_sort: `buckets`[", invalid / length, ", ",
                    invalid % length, "] = ", buckets.flat<int32>()(invalid),
                    " is outside [0, num_buckets) = [0, ", num_buckets,
                    "); bucket ids must lie in that range"));
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>BucketSort").Device(DEVICE_CPU),
                        BucketSortOp<CPUDevice>);

#if GOOGLE_CUDA
REGISTER_KERNEL_BUILDER(Name("TfResattn>BucketSort")
                            .Device(DEVICE_GPU)
                            .HostMemory("num_buckets"),
                        BucketSortOp<GPUDevice>);
#endif  // GOOGLE_CUDA

#endif  // TF_RESATTN_KERNELS_ONLY

}  // namespace tf_resattn
}  // namespace tensorflow
