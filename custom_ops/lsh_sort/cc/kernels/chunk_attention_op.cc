// TfResattn>LshChunkAttention and its gradient: the attention half of
// multi-round LSH attention, fused, on the CPU.
//
// Round by round, the tokens are first gathered into sorted order (one
// streaming pass), then one work item per (row, chunk) takes the chunk's
// b queries and its 2b keys (the chunk, then the chunk before it), runs the
// masked softmax attention in cache-sized scratch buffers and writes the
// b outputs and log-sum-exps straight back to the queries' original
// positions. A last pass combines the rounds through their log-sum-exps.
// The [chunks, b, 2b] logits never exist in memory; the gradient recomputes
// them chunk by chunk from the saved log-sum-exps (as FlashAttention does).
//
// The mathematics is that of `chunked_attention` and `lsh_attention` in
// tf_resattn/layers/lsh_attention.py (the reference the tests compare with):
// keys are the queries normalised to unit length, queries are scaled by
// D^-1/2, a query meets itself at logit + self_mask, keys at positions
// >= valid_length and the first chunk's look-back half get + padding_mask.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "custom_ops/lsh_sort/cc/kernels/small_gemm.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;
using Matrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;
using ConstRow = Eigen::Map<const Eigen::RowVectorXf>;
using Row = Eigen::Map<Eigen::RowVectorXf>;
using Plain = Operand<false>;
using Transposed = Operand<true>;

// Mask logits of float32, as `mask_values` in lsh_attention.py.
constexpr float kSelfMask = -1e5f;
constexpr float kPaddingMask = -1e9f;
// The epsilon of `l2_normalize` in lsh_attention.py.
constexpr float kNormEpsilon = 1e-6f;
// Rows ahead of the current one whose source a gather prefetches.
constexpr int64_t kPrefetchDistance = 8;

// c = a * b (+ c when `accumulate`) for row-major Eigen matrices; `a` read
// as stored (`Plain`) or transposed (`Transposed`).
template <typename A>
void Multiply(const Matrix& a, const Matrix& b, Matrix* c,
              bool accumulate = false) {
  const A operand{a.data(), a.cols()};
  SmallGemm(c->rows(), c->cols(), b.rows(), operand, b.data(), b.cols(),
            c->data(), c->cols(), accumulate);
}

// Row-major transpose of an Eigen matrix into `transposed` (already sized).
void TransposeInto(const Matrix& matrix, Matrix* transposed) {
  Transpose(matrix.rows(), matrix.cols(), matrix.data(), matrix.cols(),
            transposed->data(), transposed->cols());
}

// weights[i, :] = exp(weights[i, :] - shift[i]) for every row i. One
// contiguous row at a time, so that Eigen's vectorised exp is used.
void ShiftedExp(const Vector& shift, Matrix* weights) {
  for (Eigen::Index i = 0; i < weights->rows(); ++i) {
    Eigen::Map<Eigen::ArrayXf> row(weights->row(i).data(), weights->cols());
    row = (row - shift[i]).exp();
  }
}

// Shapes of one call: N rows, R rounds, L tokens, D depth, b bucket size.
struct Dims {
  int64_t rows, rounds, length, depth, bucket, chunks;
  int64_t valid_length;
};

// A [N, L, width] float tensor whose rows a gather copies side by side.
struct Columns {
  const float* data;
  int64_t width;
};

// sorted[n, i, :] = the rows of `sources` at token permutation[n, round, i],
// concatenated; `sorted` is [N, L, sum of widths]. The reads are scattered,
// so each is prefetched a few rows ahead.
void GatherRound(const CPUDevice& device, const Dims& d,
                 const int32_t* permutation, int64_t round,
                 const std::vector<Columns>& sources, float* sorted) {
  int64_t width = 0;
  for (const Columns& source : sources) width += source.width;
  auto token_of = [&](int64_t flat) {
    const int64_t row = flat / d.length;
    return row * d.length +
           permutation[(row * d.rounds + round) * d.length + flat % d.length];
  };
  auto gather = [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index flat = begin; flat < end; ++flat) {
      if (flat + kPrefetchDistance < end) {
        const int64_t ahead = token_of(flat + kPrefetchDistance);
        for (const Columns& source : sources) {
          const char* start =
              reinterpret_cast<const char*>(source.data + ahead * source.width);
          const int64_t bytes = source.width * sizeof(float);
          for (int64_t byte = 0; byte < bytes; byte += 64) {
            __builtin_prefetch(start + byte);
          }
        }
      }
      const int64_t token = token_of(flat);
      float* target = sorted + flat * width;
      for (const Columns& source : sources) {
        const float* row = source.data + token * source.width;
        for (int64_t k = 0; k < source.width; ++k) target[k] = row[k];
        target += source.width;
      }
    }
  };
  const double bytes = width * sizeof(float);
  device.parallelFor(d.rows * d.length, Eigen::TensorOpCost(bytes, bytes, 4.0),
                     gather);
}

// One chunk's operands, read from a round's sorted tokens, and its [b, 2b]
// attention weights.
class ChunkScratch {
 public:
  explicit ChunkScratch(const Dims& dims)
      : raw_keys(2 * dims.bucket, dims.depth),
        keys(2 * dims.bucket, dims.depth),
        keys_transposed(dims.depth, 2 * dims.bucket),
        values(2 * dims.bucket, dims.depth),
        queries(dims.bucket, dims.depth),
        weights(dims.bucket, 2 * dims.bucket),
        inverse_norms(2 * dims.bucket),
        key_bias(2 * dims.bucket),
        tokens(2 * dims.bucket) {}

  // Sorted position of key j (of 2b) of `chunk`: the chunk's own tokens,
  // then those of the chunk before it (cyclically).
  static int64_t KeyPosition(const Dims& d, int64_t chunk, int64_t j) {
    const int64_t previous = (chunk + d.chunks - 1) % d.chunks;
    return j < d.bucket ? chunk * d.bucket + j
                        : previous * d.bucket + (j - d.bucket);
  }

  // Reads chunk `chunk` of row `row` from `sorted` ([N, L, width], qk in
  // columns [0, D), v in [D, 2D)), whose tokens are `order` ([L] of this row
  // and round), and fills `weights` with its logits plus masks.
  void Load(const Dims& d, const float* sorted, int64_t width,
            const int32_t* order, int64_t row, int64_t chunk) {
    const int64_t b = d.bucket;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d.depth));
    for (int64_t j = 0; j < 2 * b; ++j) {
      const int64_t position = KeyPosition(d, chunk, j);
      const float* source = sorted + (row * d.length + position) * width;
      tokens[j] = order[position];
      raw_keys.row(j) = ConstRow(source, d.depth);
      values.row(j) = ConstRow(source + d.depth, d.depth);
      const bool masked = tokens[j] >= d.valid_length || (chunk == 0 && j >= b);
      key_bias[j] = masked ? kPaddingMask : 0.0f;
    }
    inverse_norms =
        (raw_keys.rowwise().squaredNorm().array() + kNormEpsilon).rsqrt();
    keys = inverse_norms.asDiagonal() * raw_keys;
    TransposeInto(keys, &keys_transposed);
    queries = raw_keys.topRows(b) * scale;
    Multiply<Plain>(queries, keys_transposed, &weights);
    for (int64_t i = 0; i < b; ++i) {
      weights.row(i) += key_bias.transpose();
      weights(i, i) += kSelfMask;
    }
  }

  Matrix raw_keys, keys, keys_transposed, values, queries, weights;
  Vector inverse_norms, key_bias;
  std::vector<int32_t> tokens;
};

// Checks qk, v [N, L, D], permutation [N, R, L], valid_length (a scalar)
// and fills `d`; a permutation entry outside [0, L) is refused, since it
// would address memory outside the tensors.
absl::Status CheckInputs(OpKernelContext* context, const char* op,
                         int64_t bucket, Dims* d) {
  const Tensor& qk = context->input(0);
  const Tensor& v = context->input(1);
  const Tensor& permutation = context->input(2);
  const Tensor& valid_length = context->input(3);
  if (qk.dims() != 3) {
    return errors::InvalidArgument(op, ": `qk` must be [N, L, D], got ",
                                   qk.shape().DebugString());
  }
  if (v.shape() != qk.shape()) {
    return errors::InvalidArgument(op, ": `v` has shape ",
                                   v.shape().DebugString(), " but `qk` has ",
                                   qk.shape().DebugString());
  }
  if (permutation.dims() != 3 || permutation.dim_size(0) != qk.dim_size(0) ||
      permutation.dim_size(2) != qk.dim_size(1)) {
    return errors::InvalidArgument(
        op, ": `permutation` must be [N, R, L] of qk's [N, L, D] = ",
        qk.shape().DebugString(), ", got ", permutation.shape().DebugString());
  }
  if (!TensorShapeUtils::IsScalar(valid_length.shape())) {
    return errors::InvalidArgument(op, ": `valid_length` must be a scalar");
  }
  d->rows = qk.dim_size(0);
  d->length = qk.dim_size(1);
  d->depth = qk.dim_size(2);
  d->rounds = permutation.dim_size(1);
  d->bucket = bucket;
  if (d->length == 0 || d->length % bucket != 0) {
    return errors::InvalidArgument(op, ": L = ", d->length,
                                   " must be a positive multiple of "
                                   "bucket_size = ", bucket);
  }
  if (d->length > std::numeric_limits<int32_t>::max()) {
    return errors::InvalidArgument(op, ": L = ", d->length,
                                   " is too long for int32 positions");
  }
  d->chunks = d->length / bucket;
  d->valid_length = valid_length.scalar<int32>()();
  const auto order = permutation.flat<int32>();
  for (int64_t i = 0; i < order.size(); ++i) {
    if (order(i) < 0 || order(i) >= d->length) {
      return errors::InvalidArgument(
          op, ": `permutation` holds ", order(i), " outside [0, L) = [0, ",
          d->length, "); each row of each round must be a permutation of "
          "[0, L)");
    }
  }
  return absl::OkStatus();
}

// Cost of one chunk in cycles for the thread pool's sharding: about
// 2 * b * 2b * D multiply-adds for the forward, three times that backward.
Eigen::TensorOpCost ChunkCost(const Dims& d, double passes) {
  const double bytes = 2.0 * d.bucket * d.depth * sizeof(float) * 3;
  return Eigen::TensorOpCost(bytes, bytes / 2,
                             passes * 4.0 * d.bucket * d.bucket * d.depth);
}

// log(sum_r exp(lse[row, r, token])) over the rounds.
float RoundLogSumExp(const Dims& d, const float* lse, int64_t row,
                     int64_t token) {
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < d.rounds; ++r) {
    top = std::max(top, lse[(row * d.rounds + r) * d.length + token]);
  }
  float total = 0.0f;
  for (int64_t r = 0; r < d.rounds; ++r) {
    total += std::exp(lse[(row * d.rounds + r) * d.length + token] - top);
  }
  return top + std::log(total);
}

absl::Status AllocateScratch(OpKernelContext* context, const Dims& d,
                             int64_t width, Tensor* scratch) {
  return context->allocate_temp(
      DT_FLOAT, TensorShape({d.rows, d.length, width}), scratch);
}

// The `bucket_size` attribute both ops share.
class ChunkAttentionKernel : public OpKernel {
 public:
  explicit ChunkAttentionKernel(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("bucket_size", &bucket_));
  }

 protected:
  int64_t bucket_;
};

class LshChunkAttentionOp : public ChunkAttentionKernel {
 public:
  using ChunkAttentionKernel::ChunkAttentionKernel;

  void Compute(OpKernelContext* context) override {
    Dims d;
    OP_REQUIRES_OK(context,
                   CheckInputs(context, "lsh_chunk_attention", bucket_, &d));
    Tensor *out = nullptr, *round_out = nullptr, *lse = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, context->input(0).shape(), &out));
    OP_REQUIRES_OK(context, context->allocate_output(
                                1, TensorShape({d.rows, d.rounds, d.length,
                                                d.depth}),
                                &round_out));
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       2, TensorShape({d.rows, d.rounds, d.length}), &lse));
    const int64_t b = d.bucket, depth = d.depth, width = 2 * depth;
    Tensor sorted_tensor;
    OP_REQUIRES_OK(context, AllocateScratch(context, d, width, &sorted_tensor));
    const float* sorted = sorted_tensor.flat<float>().data();
    const std::vector<Columns> sources = {
        {context->input(0).flat<float>().data(), depth},
        {context->input(1).flat<float>().data(), depth}};
    const int32_t* permutation = context->input(2).flat<int32>().data();
    float* round_data = round_out->flat<float>().data();
    float* lse_data = lse->flat<float>().data();
    const CPUDevice& device = context->eigen_device<CPUDevice>();

    for (int64_t round = 0; round < d.rounds; ++round) {
      GatherRound(device, d, permutation, round, sources,
                  sorted_tensor.flat<float>().data());
      auto attend = [&](Eigen::Index begin, Eigen::Index end) {
        ChunkScratch s(d);
        Matrix outputs(b, depth);
        for (Eigen::Index item = begin; item < end; ++item) {
          const int64_t row = item / d.chunks, chunk = item % d.chunks;
          const int64_t base = row * d.rounds + round;
          s.Load(d, sorted, width, permutation + base * d.length, row, chunk);
          const Vector top = s.weights.rowwise().maxCoeff();
          ShiftedExp(top, &s.weights);
          const Vector total = s.weights.rowwise().sum();
          s.weights = total.cwiseInverse().asDiagonal() * s.weights;
          Multiply<Plain>(s.weights, s.values, &outputs);
          for (int64_t i = 0; i < b; ++i) {
            const int64_t at = base * d.length + s.tokens[i];
            Row(round_data + at * depth, depth) = outputs.row(i);
            lse_data[at] = top[i] + std::log(total[i]);
          }
        }
      };
      device.parallelFor(d.rows * d.chunks, ChunkCost(d, 1.0), attend);
    }

    float* out_data = out->flat<float>().data();
    auto combine = [&](Eigen::Index begin, Eigen::Index end) {
      for (Eigen::Index flat = begin; flat < end; ++flat) {
        const int64_t row = flat / d.length, token = flat % d.length;
        const float all_rounds = RoundLogSumExp(d, lse_data, row, token);
        Row result(out_data + flat * depth, depth);
        result.setZero();
        for (int64_t r = 0; r < d.rounds; ++r) {
          const int64_t at = (row * d.rounds + r) * d.length + token;
          result += std::exp(lse_data[at] - all_rounds) *
                    ConstRow(round_data + at * depth, depth);
        }
      }
    };
    const double row_bytes = depth * sizeof(float) * (d.rounds + 1);
    device.parallelFor(d.rows * d.length,
                       Eigen::TensorOpCost(row_bytes, row_bytes / d.rounds,
                                           4.0 * depth * d.rounds),
                       combine);
  }
};

class LshChunkAttentionGradOp : public ChunkAttentionKernel {
 public:
  using ChunkAttentionKernel::ChunkAttentionKernel;

  // Inputs: qk, v, permutation, valid_length (as the forward op), then the
  // forward's out [N, L, D], round_out [N, R, L, D], lse [N, R, L], and the
  // gradient d_out [N, L, D]. Outputs: d_qk, d_v [N, L, D].
  void Compute(OpKernelContext* context) override {
    Dims d;
    OP_REQUIRES_OK(context, CheckInputs(context, "lsh_chunk_attention_grad",
                                        bucket_, &d));
    const TensorShape& shape = context->input(0).shape();
    const TensorShape round_shape({d.rows, d.rounds, d.length, d.depth});
    const TensorShape lse_shape({d.rows, d.rounds, d.length});
    const std::pair<int, TensorShape> expected_shapes[] = {
        {4, shape}, {5, round_shape}, {6, lse_shape}, {7, shape}};
    for (const auto& [input, expected] : expected_shapes) {
      OP_REQUIRES(context, context->input(input).shape() == expected,
                  errors::InvalidArgument(
                      "lsh_chunk_attention_grad: input ", input, " has shape ",
                      context->input(input).shape().DebugString(),
                      ", expected ", expected.DebugString()));
    }
    Tensor *d_qk = nullptr, *d_v = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, shape, &d_qk));
    OP_REQUIRES_OK(context, context->allocate_output(1, shape, &d_v));
    const int64_t b = d.bucket, depth = d.depth;
    // Per round: `upstream` [N, L, D + 2] holds each token's d o_r, delta_r
    // and lse_r in the original order; `sorted` [N, L, 3D + 2] the round's
    // qk, v and upstream in sorted order; `own` and `back` [N, L, 2D] the
    // (d qk, d v) a token gets as a query or key of its own chunk, and as a
    // look-back key of the next chunk, in sorted order.
    const int64_t upstream_width = depth + 2, width = 3 * depth + 2;
    Tensor upstream_tensor, sorted_tensor, own_tensor, back_tensor;
    OP_REQUIRES_OK(context,
                   AllocateScratch(context, d, upstream_width, &upstream_tensor));
    OP_REQUIRES_OK(context, AllocateScratch(context, d, width, &sorted_tensor));
    OP_REQUIRES_OK(context, AllocateScratch(context, d, 2 * depth, &own_tensor));
    OP_REQUIRES_OK(context,
                   AllocateScratch(context, d, 2 * depth, &back_tensor));
    const float* qk = context->input(0).flat<float>().data();
    const float* v = context->input(1).flat<float>().data();
    const int32_t* permutation = context->input(2).flat<int32>().data();
    const float* out = context->input(4).flat<float>().data();
    const float* round_out = context->input(5).flat<float>().data();
    const float* lse = context->input(6).flat<float>().data();
    const float* d_out = context->input(7).flat<float>().data();
    float* upstream = upstream_tensor.flat<float>().data();
    float* sorted = sorted_tensor.flat<float>().data();
    float* own = own_tensor.flat<float>().data();
    float* back = back_tensor.flat<float>().data();
    float* d_qk_data = d_qk->flat<float>().data();
    float* d_v_data = d_v->flat<float>().data();
    std::fill_n(d_qk_data, d_qk->NumElements(), 0.0f);
    std::fill_n(d_v_data, d_v->NumElements(), 0.0f);
    const CPUDevice& device = context->eigen_device<CPUDevice>();
    const float scale = 1.0f / std::sqrt(static_cast<float>(depth));
    const double row_bytes = 3.0 * depth * sizeof(float);
    const Eigen::TensorOpCost per_token(row_bytes, row_bytes, 8.0 * depth);

    for (int64_t round = 0; round < d.rounds; ++round) {
      // The rounds' combination out = sum_r w_r o_r, w = softmax(lse):
      // d o_r = w_r d_out, d lse_r = w_r d_out . (o_r - out), and the
      // softmax gradient's delta_r = d o_r . o_r - d lse_r.
      auto prepare = [&](Eigen::Index begin, Eigen::Index end) {
        for (Eigen::Index flat = begin; flat < end; ++flat) {
          const int64_t row = flat / d.length, token = flat % d.length;
          const int64_t at = (row * d.rounds + round) * d.length + token;
          const float w =
              std::exp(lse[at] - RoundLogSumExp(d, lse, row, token));
          const ConstRow gradient(d_out + flat * depth, depth);
          const ConstRow output(round_out + at * depth, depth);
          const ConstRow combined(out + flat * depth, depth);
          float* target = upstream + flat * upstream_width;
          Row(target, depth) = w * gradient;
          const float d_lse = w * gradient.dot(output - combined);
          target[depth] = w * gradient.dot(output) - d_lse;
          target[depth + 1] = lse[at];
        }
      };
      device.parallelFor(d.rows * d.length, per_token, prepare);
      GatherRound(device, d, permutation, round,
                  {{qk, depth}, {v, depth}, {upstream, upstream_width}},
                  sorted);

      auto backward = [&](Eigen::Index begin, Eigen::Index end) {
        ChunkScratch s(d);
        Matrix d_outputs(b, depth), d_queries(b, depth), d_keys(2 * b, depth),
            d_values(2 * b, depth), d_weights(b, 2 * b),
            values_transposed(depth, 2 * b);
        Vector delta(b), round_lse(b);
        for (Eigen::Index item = begin; item < end; ++item) {
          const int64_t row = item / d.chunks, chunk = item % d.chunks;
          const int64_t base = row * d.rounds + round;
          s.Load(d, sorted, width, permutation + base * d.length, row, chunk);
          for (int64_t i = 0; i < b; ++i) {
            const float* query =
                sorted + (row * d.length + chunk * b + i) * width + 2 * depth;
            d_outputs.row(i) = ConstRow(query, depth);
            delta[i] = query[depth];
            round_lse[i] = query[depth + 1];
          }
          ShiftedExp(round_lse, &s.weights);
          TransposeInto(s.values, &values_transposed);
          Multiply<Plain>(d_outputs, values_transposed, &d_weights);
          d_weights = s.weights.cwiseProduct(d_weights.colwise() - delta);
          Multiply<Plain>(d_weights, s.keys, &d_queries);
          Multiply<Transposed>(d_weights, s.queries, &d_keys);
          Multiply<Transposed>(s.weights, d_outputs, &d_values);
          // Through the normalisation k = x * r, r = (|x|^2 + eps)^-1/2:
          // dx = r dk - r^3 (x . dk) x.
          const Vector dots = s.raw_keys.cwiseProduct(d_keys).rowwise().sum();
          const Vector cubes = s.inverse_norms.array().cube();
          d_keys = s.inverse_norms.asDiagonal() * d_keys -
                   (cubes.cwiseProduct(dots)).asDiagonal() * s.raw_keys;
          // Each sorted row of `own` and `back` is written by one chunk.
          for (int64_t j = 0; j < 2 * b; ++j) {
            const int64_t position = ChunkScratch::KeyPosition(d, chunk, j);
            float* target = (j < b ? own : back) +
                            (row * d.length + position) * 2 * depth;
            if (j >= b && chunk == 0) {  // the masked look-back: no gradient
              std::fill_n(target, 2 * depth, 0.0f);
              continue;
            }
            Row(target, depth) = d_keys.row(j);
            if (j < b) Row(target, depth) += scale * d_queries.row(j);
            Row(target + depth, depth) = d_values.row(j);
          }
        }
      };
      device.parallelFor(d.rows * d.chunks, ChunkCost(d, 3.0), backward);

      // Within a round each token has one sorted row: no write conflicts.
      auto scatter = [&](Eigen::Index begin, Eigen::Index end) {
        for (Eigen::Index flat = begin; flat < end; ++flat) {
          const int64_t row = flat / d.length;
          const int64_t token =
              row * d.length +
              permutation[(row * d.rounds + round) * d.length +
                          flat % d.length];
          const ConstRow mine(own + flat * 2 * depth, 2 * depth);
          const ConstRow next(back + flat * 2 * depth, 2 * depth);
          Row(d_qk_data + token * depth, depth) +=
              mine.head(depth) + next.head(depth);
          Row(d_v_data + token * depth, depth) +=
              mine.tail(depth) + next.tail(depth);
        }
      };
      device.parallelFor(d.rows * d.length, per_token, scatter);
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>LshChunkAttention").Device(DEVICE_CPU),
                        LshChunkAttentionOp);
REGISTER_KERNEL_BUILDER(
    Name("TfResattn>LshChunkAttentionGrad").Device(DEVICE_CPU),
    LshChunkAttentionGradOp);

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow
