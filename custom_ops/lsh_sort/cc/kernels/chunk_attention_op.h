// CPU kernels of TfResattn>LshChunkAttention and its gradient, apart from
// TensorFlow's op kernels: the op kernels and the XLA custom-call targets
// (cc/xla/) call the same functions.
//
// Shapes: N rows, R rounds, L tokens, D depth, b bucket size. The tokens are
// [N, L, D], or [B, L, H, D] with row n = (n / H, n % H): the heads of a
// linear projection side by side, read where they lie.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_CHUNK_ATTENTION_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_CHUNK_ATTENTION_OP_H_

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

// Shapes of one call (`chunks` = L / b is filled by CheckChunkDims).
struct ChunkDims {
  int64_t rows, heads, rounds, length, depth, bucket, chunks;
  int64_t valid_length;
};

// Checks that L is a positive multiple of b that fits int32 positions and
// that every entry of `permutation` [N, R, L] lies in [0, L) (another
// would address memory outside the tensors); sets `d->chunks`. `op` names
// the caller in the messages. ChunkDimsError returns the reason (empty when
// the shapes are valid), which needs no TensorFlow or Abseil.
std::string ChunkDimsError(const char* op, const int32_t* permutation,
                           ChunkDims* d);
#ifndef TF_RESATTN_KERNELS_ONLY
// The same as a status (TensorFlow builds): InvalidArgument with that reason.
absl::Status CheckChunkDims(const char* op, const int32_t* permutation,
                            ChunkDims* d);
#endif  // TF_RESATTN_KERNELS_ONLY

// Floats of scratch memory the forward and the gradient need.
int64_t ChunkAttentionScratchFloats(const ChunkDims& d);
int64_t ChunkAttentionGradScratchFloats(const ChunkDims& d);

// out (as qk): the attention of all rounds combined; lse [N, L]: each
// query's log-sum-exp over all rounds. `scratch` holds
// ChunkAttentionScratchFloats(d) floats, 64-byte aligned.
void ChunkAttentionForward(const Eigen::ThreadPoolDevice& device,
                           const ChunkDims& d, const float* qk, const float* v,
                           const int32_t* permutation, float* scratch,
                           float* out, float* lse);

// d_qk, d_v (as qk) from the forward's inputs, its outputs `out`, `lse` and
// the upstream gradient `d_out` (as qk). `scratch` holds
// ChunkAttentionGradScratchFloats(d) floats, 64-byte aligned.
void ChunkAttentionBackward(const Eigen::ThreadPoolDevice& device,
                            const ChunkDims& d, const float* qk,
                            const float* v, const int32_t* permutation,
                            const float* out, const float* lse,
                            const float* d_out, float* scratch, float* d_qk,
                            float* d_v);

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_CHUNK_ATTENTION_OP_H_
