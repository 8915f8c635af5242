// CPU kernels of TfResattn>GroupNorm and its gradient, apart from
// TensorFlow's op kernels: the op kernels and the XLA custom-call targets
// (cc/xla/) call the same functions.
//
// Shapes: x, y, dy, dx [B, P, C] (every axis of x between the first and the
// last flattened into P pixels), C = G * S channels in G groups of S
// neighbours; gamma, beta, dgamma, dbeta [C]; mean, rstd [B, G].

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_GROUP_NORM_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_GROUP_NORM_OP_H_

#include <cstdint>

namespace Eigen {
struct ThreadPoolDevice;
}  // namespace Eigen

namespace tensorflow {
namespace tf_resattn {

// The layout of x [B, P, C] and its partition into fixed blocks of pixels
// (a function of the shape only, so that the sums do not depend on the
// thread count).
struct GroupNormLayout {
  int64_t batch, pixels, channels, groups, group_size;
  int64_t block_pixels, blocks;  // per batch entry

  int64_t items() const { return batch * blocks; }
};

// The layout of x [B, P, C] in `groups` groups (C > 0, a multiple of
// `groups`: the callers check).
GroupNormLayout MakeGroupNormLayout(int64_t batch, int64_t pixels,
                                    int64_t channels, int64_t groups);

// Floats of scratch memory the forward and the gradient need.
int64_t GroupNormScratchFloats(const GroupNormLayout& layout);
int64_t GroupNormGradScratchFloats(const GroupNormLayout& layout);

// y = (x - mean) rstd gamma + beta per (batch entry, group), rstd =
// (var + epsilon)^-1/2; writes mean and rstd too. `scratch` holds
// GroupNormScratchFloats(layout) floats.
void GroupNormForward(const Eigen::ThreadPoolDevice& device,
                      const GroupNormLayout& layout, const float* x,
                      const float* gamma, const float* beta, float epsilon,
                      float* scratch, float* y, float* mean, float* rstd);

// dx, dgamma, dbeta from the forward's inputs x, gamma, its mean and rstd,
// and the upstream gradient dy. `scratch` holds
// GroupNormGradScratchFloats(layout) floats.
void GroupNormBackward(const Eigen::ThreadPoolDevice& device,
                       const GroupNormLayout& layout, const float* x,
                       const float* gamma, const float* mean,
                       const float* rstd, const float* dy, float* scratch,
                       float* dx, float* d_gamma, float* d_beta);

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_GROUP_NORM_OP_H_
