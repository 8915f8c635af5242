// TfResattn>LshHash: angular LSH bucket ids of every token in every round.
//
// bucket = argmax over [xR, -xR] of the first num_buckets / 2 rotation
// columns, i.e. the index of the largest |xR| (first index on ties), plus
// num_buckets / 2 when that entry is negative; tokens at positions
// >= valid_length get bucket num_buckets. This is `hash_buckets` in
// tf_resattn/layers/lsh_attention.py. Each work item rotates a block of
// tokens into a small scratch buffer and reduces it at once, so the
// [N, L, num_buckets / 2] rotated tokens never exist in memory.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "custom_ops/lsh_sort/cc/kernels/lsh_hash_op.h"
#include "custom_ops/lsh_sort/cc/kernels/small_gemm.h"
#ifndef TF_RESATTN_KERNELS_ONLY
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#endif  // TF_RESATTN_KERNELS_ONLY
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

constexpr int64_t kTokensPerBlock = 64;

// The index of the largest |values[j]|, j < count (the first one on ties).
int64_t LargestMagnitude(const float* values, int64_t count) {
  int64_t j = 0;
  float largest = 0.0f;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  if (count >= 8) {
    __m256 top = _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(values));
    for (j = 8; j + 8 <= count; j += 8) {
      top = _mm256_max_ps(
          top, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(values + j)));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, top);
    largest = *std::max_element(lanes, lanes + 8);
  }
#endif
  for (; j < count; ++j) largest = std::max(largest, std::fabs(values[j]));
  // The first entry that reaches it (none when the values hold NaN: 0).
  j = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 target = _mm256_set1_ps(largest);
  for (; j + 8 <= count; j += 8) {
    const __m256 magnitudes =
        _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(values + j));
    const int hits =
        _mm256_movemask_ps(_mm256_cmp_ps(magnitudes, target, _CMP_EQ_OQ));
    if (hits != 0) return j + __builtin_ctz(hits);
  }
#endif
  for (; j < count; ++j) {
    if (std::fabs(values[j]) == largest) return j;
  }
  return 0;
}

}  // namespace

std::string NumBucketsError(int32_t num_buckets, int64_t columns) {
  const int64_t half = num_buckets / 2;
  if (num_buckets >= 2 && num_buckets % 2 == 0 && half <= columns) return "";
  return "lsh_hash: `num_buckets` = " + std::to_string(num_buckets) +
         " must be even, >= 2 and at most twice the rotations' K = " +
         std::to_string(columns);
}

#ifndef TF_RESATTN_KERNELS_ONLY
absl::Status CheckNumBuckets(int32_t num_buckets, int64_t columns) {
  const std::string error = NumBucketsError(num_buckets, columns);
  if (error.empty()) return absl::OkStatus();
  return errors::InvalidArgument(error);
}
#endif  // TF_RESATTN_KERNELS_ONLY

void LshHashCpu(const CPUDevice& device, const HashDims& d, const float* tokens,
                const float* rotation, int32_t num_buckets,
                int64_t valid_length, int32_t* ids) {
  const int64_t rows = d.rows, heads = d.heads, length = d.length;
  const int64_t depth = d.depth, rounds = d.rounds, columns = d.columns;
  const int64_t half = num_buckets / 2;
  const int64_t blocks = (length + kTokensPerBlock - 1) / kTokensPerBlock;

  auto hash = [&](Eigen::Index begin, Eigen::Index end) {
    std::vector<float> rotated(kTokensPerBlock * half);
    for (Eigen::Index item = begin; item < end; ++item) {
      const int64_t row = item / blocks;
      const int64_t first = (item % blocks) * kTokensPerBlock;
      const int64_t count = std::min(kTokensPerBlock, length - first);
      const Operand<false> block{
          tokens + ((row / heads * length + first) * heads + row % heads) *
                       depth,
          heads * depth};
      for (int64_t round = 0; round < rounds; ++round) {
        // rotations[:, round, :half] is row-major with stride R * K.
        SmallGemm(count, half, depth, block, rotation + round * columns,
                  rounds * columns, rotated.data(), half,
                  /*accumulate=*/false);
        int32_t* out = ids + (row * rounds + round) * length + first;
        for (int64_t i = 0; i < count; ++i) {
          if (first + i >= valid_length) {
            out[i] = num_buckets;
            continue;
          }
          const float* values = rotated.data() + i * half;
          const int64_t best = LargestMagnitude(values, half);
          out[i] = static_cast<int32_t>(best + (values[best] < 0 ? half : 0));
        }
      }
    }
  };
  const double flops = 2.0 * kTokensPerBlock * depth * half * rounds;
  device.parallelFor(
      rows * blocks,
      Eigen::TensorOpCost(kTokensPerBlock * depth * sizeof(float),
                          kTokensPerBlock * rounds * sizeof(int32_t), flops),
      hash);
}

#ifndef TF_RESATTN_KERNELS_ONLY

namespace {

class LshHashOp : public OpKernel {
 public:
  explicit LshHashOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& qk = context->input(0);
    const Tensor& rotations = context->input(1);
    const Tensor& num_buckets_tensor = context->input(2);
    const Tensor& valid_length_tensor = context->input(3);
    OP_REQUIRES(context, qk.dims() == 3 || qk.dims() == 4,
                errors::InvalidArgument(
                    "lsh_hash: `qk` must be [N, L, D] or [B, L, H, D], got ",
                    qk.shape().DebugString()));
    HashDims d;
    // [B, L, H, D]: row n is head n % H of batch entry n / H.
    d.heads = qk.dims() == 4 ? qk.dim_size(2) : 1;
    d.depth = qk.dim_size(qk.dims() - 1);
    OP_REQUIRES(
        context, rotations.dims() == 3 && rotations.dim_size(0) == d.depth,
        errors::InvalidArgument("lsh_hash: `rotations` must be [D, R, K] with "
                                "qk's D = ", d.depth, ", got ",
                                rotations.shape().DebugString()));
    OP_REQUIRES(context,
                TensorShapeUtils::IsScalar(num_buckets_tensor.shape()) &&
                    TensorShapeUtils::IsScalar(valid_length_tensor.shape()),
                errors::InvalidArgument(
                    "lsh_hash: `num_buckets` and `valid_length` must be scalars"));
    d.rows = qk.dim_size(0) * d.heads;
    d.length = qk.dim_size(1);
    d.rounds = rotations.dim_size(1);
    d.columns = rotations.dim_size(2);
    const int32_t num_buckets = num_buckets_tensor.scalar<int32>()();
    OP_REQUIRES_OK(context, CheckNumBuckets(num_buckets, d.columns));

    Tensor* buckets = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       0, TensorShape({d.rows, d.rounds, d.length}), &buckets));
    LshHashCpu(context->eigen_device<CPUDevice>(), d, qk.flat<float>().data(),
               rotations.flat<float>().data(), num_buckets,
               valid_length_tensor.scalar<int32>()(),
               buckets->flat<int32>().data());
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>LshHash").Device(DEVICE_CPU),
                        LshHashOp);

}  // namespace
#endif  // TF_RESATTN_KERNELS_ONLY

}  // namespace tf_resattn
}  // namespace tensorflow
