// TfResattn>LayerNorm and its gradient: layer normalisation over the last
// axis in one pass over the tokens each way (CPU, float32).
//
// y = (x - mean) * rstd * gamma + beta per row of C channels, with
// rstd = (var + epsilon)^-1/2 and the variance taken about the mean, as
// `keras.layers.LayerNormalization(axis=-1)` computes it. Composed of
// TensorFlow ops, the same takes a dozen passes over [M, C] tensors and as
// many temporaries each way; here the forward writes y and two floats per
// row, and the gradient reads x, dy once.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "Eigen/Core"
#include "custom_ops/lsh_sort/cc/kernels/layer_norm_op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;
using Array = Eigen::Map<Eigen::ArrayXf>;
using ConstArray = Eigen::Map<const Eigen::ArrayXf>;

// Rows per work item of the gradient. Fixed, not left to the thread pool,
// so that the partial sums of dgamma and dbeta, and hence their rounding,
// are the same on every call.
constexpr int64_t kRowsPerBlock = 256;

int64_t GradBlocks(int64_t rows) {
  return (rows + kRowsPerBlock - 1) / kRowsPerBlock;
}

}  // namespace

void LayerNormForward(const CPUDevice& device, int64_t rows, int64_t channels,
                      const float* x, const float* gamma_data,
                      const float* beta_data, float epsilon, float* y,
                      float* mean, float* rstd) {
  const ConstArray gamma(gamma_data, channels);
  const ConstArray beta(beta_data, channels);
  auto normalize = [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index row = begin; row < end; ++row) {
      const ConstArray values(x + row * channels, channels);
      const float average = values.mean();
      const float variance = (values - average).square().mean();
      const float scale = 1.0f / std::sqrt(variance + epsilon);
      Array(y + row * channels, channels) =
          (values - average) * (scale * gamma) + beta;
      mean[row] = average;
      rstd[row] = scale;
    }
  };
  const double bytes = channels * sizeof(float);
  device.parallelFor(rows, Eigen::TensorOpCost(bytes, bytes, 6.0 * channels),
                     normalize);
}

int64_t LayerNormGradScratchFloats(int64_t rows, int64_t channels) {
  return GradBlocks(rows) * 2 * channels;
}

// With xhat = (x - mean) rstd and g = dy gamma, per row:
//   dx = rstd (g - mean(g) - xhat mean(g xhat)).
void LayerNormBackward(const CPUDevice& device, int64_t rows, int64_t channels,
                       const float* x, const float* gamma_data,
                       const float* mean, const float* rstd, const float* dy,
                       float* partials, float* dx, float* d_gamma,
                       float* d_beta) {
  const ConstArray gamma(gamma_data, channels);
  const int64_t blocks = GradBlocks(rows);
  auto backward = [&](Eigen::Index begin, Eigen::Index end) {
    Eigen::ArrayXf normalized(channels), scaled(channels);
    for (Eigen::Index block = begin; block < end; ++block) {
      Array gamma_sum(partials + block * 2 * channels, channels);
      Array beta_sum(partials + (block * 2 + 1) * channels, channels);
      gamma_sum.setZero();
      beta_sum.setZero();
      const int64_t last = std::min(rows, (block + 1) * kRowsPerBlock);
      for (int64_t row = block * kRowsPerBlock; row < last; ++row) {
        const ConstArray upstream(dy + row * channels, channels);
        normalized =
            (ConstArray(x + row * channels, channels) - mean[row]) * rstd[row];
        scaled = upstream * gamma;
        Array(dx + row * channels, channels) =
            rstd[row] * (scaled - scaled.mean() -
                         normalized * (scaled * normalized).mean());
        gamma_sum += upstream * normalized;
        beta_sum += upstream;
      }
    }
  };
  const double bytes = 3.0 * kRowsPerBlock * channels * sizeof(float);
  device.parallelFor(
      blocks,
      Eigen::TensorOpCost(bytes, bytes / 3, 12.0 * kRowsPerBlock * channels),
      backward);

  Array gamma_total(d_gamma, channels);
  Array beta_total(d_beta, channels);
  gamma_total.setZero();
  beta_total.setZero();
  for (int64_t block = 0; block < blocks; ++block) {
    gamma_total += ConstArray(partials + block * 2 * channels, channels);
    beta_total += ConstArray(partials + (block * 2 + 1) * channels, channels);
  }
}

namespace {

// An input that must be a [C] vector, and its name for error messages.
struct VectorInput {
  int index;
  const char* name;
};

// Checks that x is [..., C] with C > 0 and that every input in `vectors`
// is [C]; sets `rows` (the product of x's other dimensions) and `channels`.
absl::Status CheckShapes(OpKernelContext* context, const char* op,
                         std::initializer_list<VectorInput> vectors,
                         int64_t* rows, int64_t* channels) {
  const Tensor& x = context->input(0);
  if (x.dims() < 1 || x.dim_size(x.dims() - 1) == 0) {
    return errors::InvalidArgument(op, ": `x` must be [..., C] with C > 0, "
                                   "got ", x.shape().DebugString());
  }
  *channels = x.dim_size(x.dims() - 1);
  *rows = x.NumElements() / *channels;
  for (const VectorInput& input : vectors) {
    const Tensor& vector = context->input(input.index);
    if (vector.dims() != 1 || vector.dim_size(0) != *channels) {
      return errors::InvalidArgument(
          op, ": `", input.name, "` must be [C] with x's C = ", *channels,
          ", got ", vector.shape().DebugString());
    }
  }
  return absl::OkStatus();
}

class LayerNormOp : public OpKernel {
 public:
  explicit LayerNormOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("epsilon", &epsilon_));
  }

  // Inputs: x [..., C], gamma [C], beta [C]. Outputs: y (as x), and the
  // mean and rstd of every row, [M] with M the product of x's other
  // dimensions.
  void Compute(OpKernelContext* context) override {
    int64_t rows, channels;
    OP_REQUIRES_OK(context, CheckShapes(context, "layer_norm",
                                        {{1, "gamma"}, {2, "beta"}}, &rows,
                                        &channels));
    Tensor *y = nullptr, *mean = nullptr, *rstd = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, context->input(0).shape(), &y));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, TensorShape({rows}), &mean));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, TensorShape({rows}), &rstd));
    LayerNormForward(context->eigen_device<CPUDevice>(), rows, channels,
                     context->input(0).flat<float>().data(),
                     context->input(1).flat<float>().data(),
                     context->input(2).flat<float>().data(), epsilon_,
                     y->flat<float>().data(), mean->flat<float>().data(),
                     rstd->flat<float>().data());
  }

 private:
  float epsilon_;
};

class LayerNormGradOp : public OpKernel {
 public:
  explicit LayerNormGradOp(OpKernelConstruction* context)
      : OpKernel(context) {}

  // Inputs: x [..., C], gamma [C], the forward's mean and rstd [M], and dy
  // (as x). Outputs: dx (as x), dgamma and dbeta [C].
  void Compute(OpKernelContext* context) override {
    int64_t rows, channels;
    OP_REQUIRES_OK(context, CheckShapes(context, "layer_norm_grad",
                                        {{1, "gamma"}}, &rows, &channels));
    const TensorShape& shape = context->input(0).shape();
    for (const VectorInput& input : {VectorInput{2, "mean"}, {3, "rstd"}}) {
      OP_REQUIRES(
          context, context->input(input.index).shape() == TensorShape({rows}),
          errors::InvalidArgument(
              "layer_norm_grad: `", input.name, "` must be [", rows,
              "], got ", context->input(input.index).shape().DebugString()));
    }
    OP_REQUIRES(context, context->input(4).shape() == shape,
                errors::InvalidArgument(
                    "layer_norm_grad: `dy` has shape ",
                    context->input(4).shape().DebugString(), ", expected ",
                    shape.DebugString()));
    Tensor *dx = nullptr, *d_gamma = nullptr, *d_beta = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, shape, &dx));
    OP_REQUIRES_OK(context, context->allocate_output(
                                1, TensorShape({channels}), &d_gamma));
    OP_REQUIRES_OK(context, context->allocate_output(
                                2, TensorShape({channels}), &d_beta));
    Tensor scratch;
    const int64_t scratch_floats = LayerNormGradScratchFloats(rows, channels);
    OP_REQUIRES_OK(context,
                   context->allocate_temp(
                       DT_FLOAT, TensorShape({scratch_floats}), &scratch));
    LayerNormBackward(
        context->eigen_device<CPUDevice>(), rows, channels,
        context->input(0).flat<float>().data(),
        context->input(1).flat<float>().data(),
        context->input(2).flat<float>().data(),
        context->input(3).flat<float>().data(),
        context->input(4).flat<float>().data(), scratch.flat<float>().data(),
        dx->flat<float>().data(), d_gamma->flat<float>().data(),
        d_beta->flat<float>().data());
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>LayerNorm").Device(DEVICE_CPU),
                        LayerNormOp);
REGISTER_KERNEL_BUILDER(Name("TfResattn>LayerNormGrad").Device(DEVICE_CPU),
                        LayerNormGradOp);

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow
