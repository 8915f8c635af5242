// TfResattn>PermuteGather: the op kernel and its CPU functor.

#define EIGEN_USE_THREADS

#include "custom_ops/lsh_sort/cc/kernels/permute_gather_op.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifndef TF_RESATTN_KERNELS_ONLY
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#endif  // TF_RESATTN_KERNELS_ONLY
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {

using CPUDevice = Eigen::ThreadPoolDevice;
using GPUDevice = Eigen::GpuDevice;

namespace {

// Asks Linux to back the 2 MiB-aligned interior of a fresh output buffer
// with transparent huge pages before it is first written. Large outputs are
// fresh anonymous memory, and faulting it in 4 KiB pages costs several times
// the copy itself; huge pages also spare the next gather, which reads this
// buffer at scattered rows, most of its TLB misses. Advice only: nothing
// changes where THP is off or the memory is already mapped.
void AdviseHugePages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  if (bytes < 4 * kHugePage) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (start + bytes) & ~(kHugePage - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#endif
}

// Rows ahead of the current one whose source is prefetched.
constexpr int64_t kPrefetchDistance = 8;

}  // namespace

namespace functor {

template <typename T>
int64_t PermuteGather<CPUDevice, T>::operator()(
    const CPUDevice& device, const T* x, const int32_t* permutation,
    int64_t rows, int64_t length, int64_t depth, T* y) const {
  std::atomic<int64_t> first_invalid(-1);
  const size_t row_bytes = sizeof(T) * depth;
  AdviseHugePages(y, row_bytes * rows * length);
  auto gather = [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index flat = begin; flat < end; ++flat) {
      if (flat + kPrefetchDistance < end) {
        const int64_t ahead = flat + kPrefetchDistance;
        const int64_t ahead_source = permutation[ahead];
        if (ahead_source >= 0 && ahead_source < length) {
          const char* row = reinterpret_cast<const char*>(
              x + ((ahead / length) * length + ahead_source) * depth);
          for (size_t byte = 0; byte < row_bytes; byte += 64) {
            __builtin_prefetch(row + byte);
          }
        }
      }
      const int64_t source = permutation[flat];
      T* target = y + flat * depth;
      if (source < 0 || source >= length) {
        std::memset(target, 0, row_bytes);
        int64_t current = first_invalid.load();
        while ((current < 0 || flat < current) &&
               !first_invalid.compare_exchange_weak(current, flat)) {
        }
        continue;
      }
      const int64_t row_start = (flat / length) * length;
      std::memcpy(target, x + (row_start + source) * depth, row_bytes);
    }
  };
  const Eigen::TensorOpCost cost_per_vector(
      /*bytes_loaded=*/row_bytes + 4.0, /*bytes_stored=*/row_bytes,
      /*compute_cycles=*/4.0);
  device.parallelFor(rows * length, cost_per_vector, gather);
  return first_invalid.load();
}

template struct PermuteGather<CPUDevice, float>;
template struct PermuteGather<CPUDevice, uint16_t>;

}  // namespace functor

#ifndef TF_RESATTN_KERNELS_ONLY

// Storage type the functors use for element type T (same width).
template <typename T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<Eigen::half> {
  using type = uint16_t;
};
template <>
struct StorageOf<Eigen::bfloat16> {
  using type = uint16_t;
};

template <typename Device, typename T>
class PermuteGatherOp : public OpKernel {
 public:
  explicit PermuteGatherOp(OpKernelConstruction* context)
      : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& x = context->input(0);
    const Tensor& permutation = context->input(1);
    OP_REQUIRES(context, x.dims() == 3,
                errors::InvalidArgument(
                    "permute_gather: `x` must have rank 3 [N, L, D], got shape ",
                    x.shape().DebugString()));
    const TensorShape rows_and_length({x.dim_size(0), x.dim_size(1)});
    const char* index_names[] = {"permutation", "inverse"};
    for (int input = 1; input <= 2; ++input) {
      const Tensor& indices = context->input(input);
      OP_REQUIRES(context, indices.shape() == rows_and_length,
                  errors::InvalidArgument(
                      "permute_gather: `", index_names[input - 1],
                      "` has shape ", indices.shape().DebugString(),
                      " but `x` has shape ", x.shape().DebugString(),
                      "; it must be [N, L] of x's [N, L, D]"));
    }
    const int64_t rows = x.dim_size(0);
    const int64_t length = x.dim_size(1);
    const int64_t depth = x.dim_size(2);
    OP_REQUIRES(context, length <= std::numeric_limits<int32_t>::max(),
                errors::InvalidArgument(
                    "permute_gather: rows of `x` are too long for int32 "
                    "positions (L = ", length, ")"));

    Tensor* y = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &y));
    if (x.NumElements() == 0) return;

    using Storage = typename StorageOf<T>::type;
    const int64_t invalid = functor::PermuteGather<Device, Storage>()(
        context->eigen_device<Device>(),
        reinterpret_cast<const Storage*>(x.flat<T>().data()),
        permutation.flat<int32>().data(), rows, length, depth,
        reinterpret_cast<Storage*>(y->flat<T>().data()));
    OP_REQUIRES(
        context, invalid != functor::kGpuLaunchFailed,
        errors::Internal("permute_gather: the CUDA kernel launch failed"));
    OP_REQUIRES(context, invalid < 0,
                errors::InvalidArgument(
                    "permute_gather: `permutation`[", invalid / length, ", ",
                    invalid % length,
                    "] = ", permutation.flat<int32>()(invalid),
                    " is outside [0, L) = [0, ", length,
                    "); each row must be a permutation of [0, L)"));
  }
};

#define REGISTER_CPU(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("TfResattn>PermuteGather")          \
                              .Device(DEVICE_CPU)                  \
                              .TypeConstraint<T>("T"),             \
                          PermuteGatherOp<CPUDevice, T>);
TF_CALL_float(REGISTER_CPU);
TF_CALL_half(REGISTER_CPU);
TF_CALL_bfloat16(REGISTER_CPU);
#undef REGISTER_CPU

#if GOOGLE_CUDA
#define REGISTER_GPU(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("TfResattn>PermuteGather")          \
                              .Device(DEVICE_GPU)                  \
                              .TypeConstraint<T>("T"),             \
                          PermuteGatherOp<GPUDevice, T>);
TF_CALL_float(REGISTER_GPU);
TF_CALL_half(REGISTER_GPU);
TF_CALL_bfloat16(REGISTER_GPU);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

#endif  // TF_RESATTN_KERNELS_ONLY

}  // namespace tf_resattn
}  // namespace tensorflow
