// CPU kernel of TfResattn>LshHash, apart from TensorFlow's op kernel: the op
// kernel and the XLA custom-call target (cc/xla/) call the same functions.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_

#include <cstdint>

#include "absl/status/status.h"

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

// Refuses a bucket count that is odd, below 2 or above twice K.
absl::Status CheckNumBuckets(int32_t num_buckets, int64_t columns);

// ids [N, R, L]: the bucket of every token in every round; tokens at
// positions >= valid_length get bucket num_buckets.
void LshHashCpu(const Eigen::ThreadPoolDevice& device, const HashDims& d,
                const float* qk, const float* rotations, int32_t num_buckets,
                int64_t valid_length, int32_t* ids);

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LSH_HASH_OP_H_
