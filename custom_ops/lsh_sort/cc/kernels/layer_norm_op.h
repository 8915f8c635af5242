// CPU kernels of TfResattn>LayerNorm and its gradient, apart from
// TensorFlow's op kernels: the op kernels and the XLA custom-call targets
// (cc/xla/) call the same functions.
//
// Shapes: x, y, dy, dx [M, C] (M rows of C channels: every axis of x but
// the last, flattened); gamma, beta, dgamma, dbeta [C]; mean, rstd [M].

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LAYER_NORM_OP_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LAYER_NORM_OP_H_

#include <cstdint>

namespace Eigen {
struct ThreadPoolDevice;
}  // namespace Eigen

namespace tensorflow {
namespace tf_resattn {

// y = (x - mean) rstd gamma + beta per row, rstd = (var + epsilon)^-1/2;
// writes each row's mean and rstd too.
void LayerNormForward(const Eigen::ThreadPoolDevice& device, int64_t rows,
                      int64_t channels, const float* x, const float* gamma,
                      const float* beta, float epsilon, float* y, float* mean,
                      float* rstd);

// Floats of scratch memory the gradient needs (per-block partial sums).
int64_t LayerNormGradScratchFloats(int64_t rows, int64_t channels);

// dx, dgamma, dbeta from the forward's inputs x, gamma, its mean and rstd,
// and the upstream gradient dy. `partials` holds
// LayerNormGradScratchFloats(rows, channels) floats.
void LayerNormBackward(const Eigen::ThreadPoolDevice& device, int64_t rows,
                       int64_t channels, const float* x, const float* gamma,
                       const float* mean, const float* rstd, const float* dy,
                       float* partials, float* dx, float* d_gamma,
                       float* d_beta);

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_LAYER_NORM_OP_H_
