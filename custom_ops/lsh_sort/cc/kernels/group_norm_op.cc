// TfResattn>GroupNorm and its gradient: group normalisation of channels-last
// feature maps in two passes over the pixels each way (CPU, float32).
//
// x is [B, P..., C] with C = G * S channels in G groups of S neighbours; per
// batch entry b and group g, mean and variance are taken over the P pixels
// and the group's S channels, and
//   y = (x - mean) * rstd * gamma + beta,  rstd = (var + epsilon)^-1/2,
// as `keras.layers.GroupNormalization(axis=-1)` computes it. Keras's
// composite reshapes to [B, P, G, S] and takes moments, square, rsqrt and
// broadcasts, a dozen passes over the map each way; here the forward reads
// x twice (per-channel sums, then y) and the gradient reads x and dy twice.
//
// Work is split into fixed blocks of pixels of one batch entry; each block
// writes per-channel partial sums, which are added in block order. The
// partition depends on the shape only, so the results do not depend on the
// thread count.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "custom_ops/lsh_sort/cc/kernels/group_norm_op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

// Elements (pixels x channels) per work item, about 64 KiB of x.
constexpr int64_t kElementsPerBlock = 16384;

// The pixel range [*begin, *end) of block `block` (of any batch entry).
void PixelRange(const GroupNormLayout& layout, int64_t block, int64_t* begin,
                int64_t* end) {
  *begin = block * layout.block_pixels;
  *end = std::min(layout.pixels, *begin + layout.block_pixels);
}

// Runs fn(b, first, last, item) for every block `item` of the layout (batch
// entry b, pixels [first, last)) on the thread pool, with the cost of one
// block per element given.
template <typename Fn>
void ForEachBlock(const CPUDevice& device, const GroupNormLayout& layout,
                  double loads_per_element, double stores_per_element,
                  double flops_per_element, Fn fn) {
  const double elements =
      static_cast<double>(layout.block_pixels) * layout.channels;
  auto run = [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index item = begin; item < end; ++item) {
      int64_t first, last;
      PixelRange(layout, item % layout.blocks, &first, &last);
      fn(item / layout.blocks, first, last, item);
    }
  };
  device.parallelFor(
      layout.items(),
      Eigen::TensorOpCost(loads_per_element * elements * sizeof(float),
                          stores_per_element * elements * sizeof(float),
                          flops_per_element * elements),
      run);
}

// Pass 1 of both ops: partials[item] = [s1, s2], the per-channel sums over
// the block's pixels of the two terms that terms(b, p, s1, s2) adds for
// pixel p of batch entry b.
template <typename Terms>
void BlockSums(const CPUDevice& device, const GroupNormLayout& layout,
               double loads_per_element, double flops_per_element,
               float* partials, Terms terms) {
  const int64_t channels = layout.channels;
  ForEachBlock(device, layout, loads_per_element, 0, flops_per_element,
               [&](int64_t b, int64_t first, int64_t last, int64_t item) {
                 float* s1 = partials + item * 2 * channels;
                 float* s2 = s1 + channels;
                 std::fill(s1, s2 + channels, 0.0f);
                 for (int64_t p = first; p < last; ++p) terms(b, p, s1, s2);
               });
}

// Writes out[p, c] = a[c] * first[p, c] + b[c] * second[p, c] + d[c] for the
// pixels [begin, end) (second may be null when b is unused).
void AffineRows(int64_t begin, int64_t end, int64_t channels,
                const float* __restrict first, const float* __restrict second,
                const float* __restrict a, const float* __restrict b,
                const float* __restrict d, float* __restrict out) {
  for (int64_t p = begin; p < end; ++p) {
    const float* f = first + p * channels;
    float* o = out + p * channels;
    if (second == nullptr) {
      for (int64_t c = 0; c < channels; ++c) o[c] = a[c] * f[c] + d[c];
    } else {
      const float* s = second + p * channels;
      for (int64_t c = 0; c < channels; ++c) {
        o[c] = a[c] * f[c] + b[c] * s[c] + d[c];
      }
    }
  }
}

// Sums the per-block partials [blocks, 2, C] of one batch entry, in block
// order, into `first`, `second` [C].
void SumBlocks(const float* partials, int64_t blocks, int64_t channels,
               float* first, float* second) {
  std::fill(first, first + channels, 0.0f);
  std::fill(second, second + channels, 0.0f);
  for (int64_t block = 0; block < blocks; ++block) {
    const float* f = partials + block * 2 * channels;
    const float* s = f + channels;
    for (int64_t c = 0; c < channels; ++c) {
      first[c] += f[c];
      second[c] += s[c];
    }
  }
}

}  // namespace

GroupNormLayout MakeGroupNormLayout(int64_t batch, int64_t pixels,
                                    int64_t channels, int64_t groups) {
  GroupNormLayout layout;
  layout.batch = batch;
  layout.pixels = pixels;
  layout.channels = channels;
  layout.groups = groups;
  layout.group_size = channels / groups;
  layout.block_pixels = std::max<int64_t>(1, kElementsPerBlock / channels);
  layout.blocks = (pixels + layout.block_pixels - 1) / layout.block_pixels;
  return layout;
}

// Scratch: the per-block partial sums [items, 2, C], then `rows` [C]
// coefficient vectors per batch entry, [B, rows, C] (2 forward, 4 backward).
int64_t GroupNormScratchFloats(const GroupNormLayout& layout) {
  return (layout.items() * 2 + layout.batch * 2) * layout.channels;
}

int64_t GroupNormGradScratchFloats(const GroupNormLayout& layout) {
  return (layout.items() * 2 + layout.batch * 4) * layout.channels;
}

void GroupNormForward(const CPUDevice& device, const GroupNormLayout& layout,
                      const float* x, const float* gamma, const float* beta,
                      float epsilon, float* scratch, float* y, float* mean,
                      float* rstd) {
  if (layout.items() == 0) return;
  const int64_t channels = layout.channels;
  float* partials = scratch;
  float* coefficients = scratch + layout.items() * 2 * channels;
  const int64_t map_size = layout.pixels * channels;

  // Pass 1: per-channel sums of d = x - x[b, 0] and d^2. The shift by the
  // entry's first pixel keeps the variance accurate for maps whose mean
  // is large against their spread.
  BlockSums(device, layout, 1, 3, partials,
            [&](int64_t b, int64_t p, float* __restrict s1,
                float* __restrict s2) {
              const float* shift = x + b * map_size;
              const float* row = shift + p * channels;
              for (int64_t c = 0; c < channels; ++c) {
                const float d = row[c] - shift[c];
                s1[c] += d;
                s2[c] += d * d;
              }
            });

  // Per batch entry: each group's mean and variance from its channels'
  // sums (Chan et al.'s pairwise combination), then y = a x + d per
  // channel with a = rstd gamma, d = beta - mean a.
  const double count = static_cast<double>(layout.pixels);
  const double group_count = count * layout.group_size;
  std::vector<float> s1(channels), s2(channels);
  for (int64_t b = 0; b < layout.batch; ++b) {
    SumBlocks(partials + b * layout.blocks * 2 * channels, layout.blocks,
              channels, s1.data(), s2.data());
    const float* shift = x + b * map_size;
    float* a = coefficients + b * 2 * channels;
    float* d = a + channels;
    for (int64_t g = 0; g < layout.groups; ++g) {
      const int64_t c0 = g * layout.group_size;
      double group_mean = 0.0;
      for (int64_t c = c0; c < c0 + layout.group_size; ++c) {
        group_mean += shift[c] + s1[c] / count;
      }
      group_mean /= layout.group_size;
      double squares = 0.0;
      for (int64_t c = c0; c < c0 + layout.group_size; ++c) {
        const double channel_mean = shift[c] + s1[c] / count;
        const double spread =
            std::max(0.0, s2[c] - static_cast<double>(s1[c]) * s1[c] / count);
        squares += spread + count * (channel_mean - group_mean) *
                                (channel_mean - group_mean);
      }
      const float scale =
          1.0f / std::sqrt(static_cast<float>(squares / group_count) +
                           epsilon);
      mean[b * layout.groups + g] = static_cast<float>(group_mean);
      rstd[b * layout.groups + g] = scale;
      for (int64_t c = c0; c < c0 + layout.group_size; ++c) {
        a[c] = scale * gamma[c];
        d[c] = beta[c] - static_cast<float>(group_mean) * a[c];
      }
    }
  }

  // Pass 2: y = a x + d.
  ForEachBlock(device, layout, 1, 1, 2,
               [&](int64_t b, int64_t first, int64_t last, int64_t) {
                 const float* a = coefficients + b * 2 * channels;
                 AffineRows(first, last, channels, x + b * map_size, nullptr,
                            a, nullptr, a + channels, y + b * map_size);
               });
}

// With xhat = (x - mean) rstd and h = dy gamma, per (batch entry, group):
//   dx = rstd (h - mean(h) - xhat mean(h xhat)),
// that is dx = a dy + e x + d per channel, from the per-channel sums of dy
// and dy (x - mean) over the pixels.
void GroupNormBackward(const CPUDevice& device, const GroupNormLayout& layout,
                       const float* x, const float* gamma, const float* mean,
                       const float* rstd, const float* dy, float* scratch,
                       float* dx, float* d_gamma, float* d_beta) {
  const int64_t channels = layout.channels;
  std::fill(d_gamma, d_gamma + channels, 0.0f);
  std::fill(d_beta, d_beta + channels, 0.0f);
  if (layout.items() == 0) return;
  float* partials = scratch;
  float* coefficients = scratch + layout.items() * 2 * channels;
  const int64_t map_size = layout.pixels * channels;

  // Per batch entry, the group means spread over the channels (row 3 of
  // the entry's coefficients).
  for (int64_t b = 0; b < layout.batch; ++b) {
    float* channel_mean = coefficients + (b * 4 + 3) * channels;
    for (int64_t c = 0; c < channels; ++c) {
      channel_mean[c] = mean[b * layout.groups + c / layout.group_size];
    }
  }

  // Pass 1: per-channel sums of dy and dy (x - mean).
  BlockSums(device, layout, 2, 4, partials,
            [&](int64_t b, int64_t p, float* __restrict s1,
                float* __restrict s2) {
              const float* row = x + b * map_size + p * channels;
              const float* up = dy + b * map_size + p * channels;
              const float* channel_mean = coefficients + (b * 4 + 3) * channels;
              for (int64_t c = 0; c < channels; ++c) {
                s1[c] += up[c];
                s2[c] += up[c] * (row[c] - channel_mean[c]);
              }
            });

  // Per batch entry and group: dgamma, dbeta contributions (in batch
  // order) and the coefficients of dx = a dy + e x + d.
  const double group_count =
      static_cast<double>(layout.pixels) * layout.group_size;
  std::vector<float> sum_dy(channels), sum_dy_centered(channels);
  for (int64_t b = 0; b < layout.batch; ++b) {
    SumBlocks(partials + b * layout.blocks * 2 * channels, layout.blocks,
              channels, sum_dy.data(), sum_dy_centered.data());
    float* a = coefficients + b * 4 * channels;
    float* e = a + channels;
    float* d = a + 2 * channels;
    for (int64_t g = 0; g < layout.groups; ++g) {
      const int64_t c0 = g * layout.group_size;
      const float mu = mean[b * layout.groups + g];
      const float r = rstd[b * layout.groups + g];
      double h_sum = 0.0, h_xhat_sum = 0.0;
      for (int64_t c = c0; c < c0 + layout.group_size; ++c) {
        const float dy_xhat = r * sum_dy_centered[c];
        d_gamma[c] += dy_xhat;
        d_beta[c] += sum_dy[c];
        h_sum += static_cast<double>(gamma[c]) * sum_dy[c];
        h_xhat_sum += static_cast<double>(gamma[c]) * dy_xhat;
      }
      const float h_mean = static_cast<float>(h_sum / group_count);
      const float h_xhat_mean = static_cast<float>(h_xhat_sum / group_count);
      // dx = r (gamma dy - h_mean - (x - mu) r h_xhat_mean)
      const float x_coefficient = -r * r * h_xhat_mean;
      const float offset = -r * h_mean - mu * x_coefficient;
      for (int64_t c = c0; c < c0 + layout.group_size; ++c) {
        a[c] = r * gamma[c];
        e[c] = x_coefficient;
        d[c] = offset;
      }
    }
  }

  // Pass 2: dx = a dy + e x + d.
  ForEachBlock(device, layout, 2, 1, 4,
               [&](int64_t b, int64_t first, int64_t last, int64_t) {
                 const float* a = coefficients + b * 4 * channels;
                 AffineRows(first, last, channels, dy + b * map_size,
                            x + b * map_size, a, a + channels,
                            a + 2 * channels, dx + b * map_size);
               });
}

namespace {

// Checks x [B, P..., C] (rank >= 2, C > 0 divisible by `groups`), the [C]
// inputs at `vector_inputs` and the [B, G] inputs at `stat_inputs`; fills
// `layout`.
absl::Status CheckShapes(OpKernelContext* context, const char* op,
                         int64_t groups,
                         std::initializer_list<std::pair<int, const char*>>
                             vector_inputs,
                         std::initializer_list<std::pair<int, const char*>>
                             stat_inputs,
                         GroupNormLayout* layout) {
  const Tensor& x = context->input(0);
  if (x.dims() < 2 || x.dim_size(x.dims() - 1) == 0) {
    return errors::InvalidArgument(op, ": `x` must be [B, ..., C] with C > 0, "
                                   "got ", x.shape().DebugString());
  }
  const int64_t channels = x.dim_size(x.dims() - 1);
  if (groups < 1 || channels % groups != 0) {
    return errors::InvalidArgument(op, ": `groups` = ", groups,
                                   " must divide x's C = ", channels);
  }
  for (const auto& [index, name] : vector_inputs) {
    const TensorShape& shape = context->input(index).shape();
    if (shape != TensorShape({channels})) {
      return errors::InvalidArgument(op, ": `", name, "` must be [C] with x's ",
                                     "C = ", channels, ", got ",
                                     shape.DebugString());
    }
  }
  const int64_t batch = x.dim_size(0);
  for (const auto& [index, name] : stat_inputs) {
    const TensorShape& shape = context->input(index).shape();
    if (shape != TensorShape({batch, groups})) {
      return errors::InvalidArgument(op, ": `", name, "` must be [B, G] = [",
                                     batch, ", ", groups, "], got ",
                                     shape.DebugString());
    }
  }
  const int64_t pixels = batch == 0 ? 0 : x.NumElements() / batch / channels;
  *layout = MakeGroupNormLayout(batch, pixels, channels, groups);
  return absl::OkStatus();
}

// A float32 temporary of `floats` values.
absl::Status AllocateScratch(OpKernelContext* context, int64_t floats,
                             Tensor* scratch) {
  return context->allocate_temp(DT_FLOAT, TensorShape({floats}), scratch);
}

class GroupNormOp : public OpKernel {
 public:
  explicit GroupNormOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("groups", &groups_));
    OP_REQUIRES_OK(context, context->GetAttr("epsilon", &epsilon_));
  }

  // Inputs: x [B, P..., C], gamma [C], beta [C]. Outputs: y (as x), and the
  // mean and rstd of every (batch entry, group), [B, G].
  void Compute(OpKernelContext* context) override {
    GroupNormLayout layout;
    OP_REQUIRES_OK(context, CheckShapes(context, "group_norm", groups_,
                                        {{1, "gamma"}, {2, "beta"}}, {},
                                        &layout));
    Tensor *y = nullptr, *mean = nullptr, *rstd = nullptr;
    const TensorShape stats_shape({layout.batch, layout.groups});
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, context->input(0).shape(), &y));
    OP_REQUIRES_OK(context, context->allocate_output(1, stats_shape, &mean));
    OP_REQUIRES_OK(context, context->allocate_output(2, stats_shape, &rstd));
    Tensor scratch;
    OP_REQUIRES_OK(context, AllocateScratch(context,
                                            GroupNormScratchFloats(layout),
                                            &scratch));
    GroupNormForward(context->eigen_device<CPUDevice>(), layout,
                     context->input(0).flat<float>().data(),
                     context->input(1).flat<float>().data(),
                     context->input(2).flat<float>().data(), epsilon_,
                     scratch.flat<float>().data(), y->flat<float>().data(),
                     mean->flat<float>().data(), rstd->flat<float>().data());
  }

 private:
  int64_t groups_;
  float epsilon_;
};

class GroupNormGradOp : public OpKernel {
 public:
  explicit GroupNormGradOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("groups", &groups_));
  }

  // Inputs: x [B, P..., C], gamma [C], the forward's mean and rstd [B, G],
  // and dy (as x). Outputs: dx (as x), dgamma and dbeta [C].
  void Compute(OpKernelContext* context) override {
    GroupNormLayout layout;
    OP_REQUIRES_OK(context, CheckShapes(context, "group_norm_grad", groups_,
                                        {{1, "gamma"}},
                                        {{2, "mean"}, {3, "rstd"}}, &layout));
    const TensorShape& shape = context->input(0).shape();
    OP_REQUIRES(context, context->input(4).shape() == shape,
                errors::InvalidArgument(
                    "group_norm_grad: `dy` has shape ",
                    context->input(4).shape().DebugString(), ", expected ",
                    shape.DebugString()));
    const TensorShape vector_shape({layout.channels});
    Tensor *dx = nullptr, *d_gamma = nullptr, *d_beta = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, shape, &dx));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, vector_shape, &d_gamma));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, vector_shape, &d_beta));
    Tensor scratch;
    OP_REQUIRES_OK(context, AllocateScratch(context,
                                            GroupNormGradScratchFloats(layout),
                                            &scratch));
    GroupNormBackward(context->eigen_device<CPUDevice>(), layout,
                      context->input(0).flat<float>().data(),
                      context->input(1).flat<float>().data(),
                      context->input(2).flat<float>().data(),
                      context->input(3).flat<float>().data(),
                      context->input(4).flat<float>().data(),
                      scratch.flat<float>().data(), dx->flat<float>().data(),
                      d_gamma->flat<float>().data(),
                      d_beta->flat<float>().data());
  }

 private:
  int64_t groups_;
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>GroupNorm").Device(DEVICE_CPU),
                        GroupNormOp);
REGISTER_KERNEL_BUILDER(Name("TfResattn>GroupNormGrad").Device(DEVICE_CPU),
                        GroupNormGradOp);

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow
