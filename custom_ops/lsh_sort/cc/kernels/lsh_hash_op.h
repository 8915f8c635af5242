// CPU kernel of TfResattn>LshHash, apart from TensorFlow's op kernel: the op
// kernel and the XLA custom-call target (cc/xla/) call the same functions.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_

#include <cstdint>
#include <string>

#ifndef TF_RESATTN_KERNELS_ONLY
#include "absl/status/status.h"
#endif  // TF_RESATTN_KERNELS_ONLY

namespace Eigen {
struct ThreadPoolDevice;
}  // namespace Eigen

namespace tensorflow {
namespace tf_resattn {

// Tokens [N, L, D], or [B, L, H, D] with row n = (n / H, n % H) (heads = 1
// for the first); rotations [D, R, K] (`columns` = K).
struct HashDims {
  int64_t rows, heads, length, depth, rounds, columns;
};

// Why a bucket count is refused (odd, below 2 or above twice K); empty when
// it is valid. CheckNumBuckets says the same as a status (TensorFlow builds).
std::string NumBucketsError(int32_t num_buckets, int64_t columns);
#ifndef TF_RESATTN_KERNELS_ONLY
absl::Status CheckNumBuckets(int32_t num_buckets, int64_t columns);
#endif  // TF_RESATTN_KERNELS_ONLY

// ids [N, R, L]: the bucket of every token in every round; tokens at
// positions >= valid_length get bucket num_buckets.
void LshHashCpu(const Eigen::ThreadPoolDevice& device, const HashDims& d,
                const float* qk, const float* rotations, int32_t num_buckets,
                int64_t valid_length, int32_t* ids);

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_
