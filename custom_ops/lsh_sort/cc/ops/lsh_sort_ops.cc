// Registration and shape functions of the LSH sort/gather ops.
//
//   TfResattn>BucketSort(buckets int32 [N, L], num_buckets int32 scalar)
//       -> permutation int32 [N, L], inverse int32 [N, L]
//   TfResattn>PermuteGather(x T [N, L, D], permutation int32 [N, L],
//                           inverse int32 [N, L]) -> y T [N, L, D]
//   TfResattn>LshHash(qk float [N, L, D] or [B, L, H, D] (N = B H),
//                     rotations float [D, R, K],
//                     num_buckets int32 scalar, valid_length int32 scalar)
//       -> buckets int32 [N, R, L]
//   TfResattn>LshChunkAttention(qk, v float [N, L, D] or [B, L, H, D],
//                               permutation int32 [N, R, L],
//                               valid_length int32 scalar; bucket_size)
//       -> out (as qk), lse [N, L]
//   TfResattn>LshChunkAttentionGrad(qk, v, permutation, valid_length, out,
//                                   lse, d_out; bucket_size)
//       -> d_qk, d_v (as qk)
//   TfResattn>LayerNorm(x float [..., C], gamma float [C], beta float [C];
//                       epsilon) -> y [..., C], mean [M], rstd [M]
//   TfResattn>LayerNormGrad(x, gamma, mean, rstd, dy)
//       -> dx [..., C], dgamma [C], dbeta [C]
//   TfResattn>GroupNorm(x float [B, ..., C], gamma float [C], beta float [C];
//                       groups, epsilon) -> y [B, ..., C], mean [B, G], rstd [B, G]
//   TfResattn>GroupNormGrad(x, gamma, mean, rstd, dy; groups)
//       -> dx [B, ..., C], dgamma [C], dbeta [C]
//   TfResattn>LibraryInfo() -> info string scalar
//
// The shape functions reject wrong ranks and mismatched N, L with messages
// that name the input, so graph construction fails early and clearly.

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace tf_resattn {
namespace {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

absl::Status RequireRank(InferenceContext* c, int input, int rank,
                         const char* op, const char* name,
                         const char* layout) {
  ShapeHandle shape = c->input(input);
  if (c->RankKnown(shape) && c->Rank(shape) != rank) {
    return errors::InvalidArgument(op, ": `", name, "` must have rank ", rank,
                                   " ", layout, ", got shape ",
                                   c->DebugString(shape));
  }
  return absl::OkStatus();
}

absl::Status BucketSortShape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(
      RequireRank(c, 0, 2, "bucket_sort", "buckets", "[N, L]"));
  TF_RETURN_IF_ERROR(
      RequireRank(c, 1, 0, "bucket_sort", "num_buckets", "(a scalar)"));
  c->set_output(0, c->input(0));
  c->set_output(1, c->input(0));
  return absl::OkStatus();
}

absl::Status PermuteGatherShape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(
      RequireRank(c, 0, 3, "permute_gather", "x", "[N, L, D]"));
  TF_RETURN_IF_ERROR(
      RequireRank(c, 1, 2, "permute_gather", "permutation", "[N, L]"));
  TF_RETURN_IF_ERROR(
      RequireRank(c, 2, 2, "permute_gather", "inverse", "[N, L]"));
  ShapeHandle x = c->input(0);
  if (!c->RankKnown(x)) {
    c->set_output(0, c->UnknownShapeOfRank(3));
    return absl::OkStatus();
  }
  ShapeHandle rows_and_length;
  TF_RETURN_IF_ERROR(c->Subshape(x, 0, 2, &rows_and_length));
  const char* names[] = {"permutation", "inverse"};
  for (int input = 1; input <= 2; ++input) {
    ShapeHandle merged;
    if (!c->Merge(rows_and_length, c->input(input), &merged).ok()) {
      return errors::InvalidArgument(
          "permute_gather: `", names[input - 1], "` has shape ",
          c->DebugString(c->input(input)), " but `x` has shape ",
          c->DebugString(x), "; it must be [N, L] of x's [N, L, D]");
    }
    rows_and_length = merged;
  }
  ShapeHandle output;
  TF_RETURN_IF_ERROR(
      c->Concatenate(rows_and_length, c->Vector(c->Dim(x, 2)), &output));
  c->set_output(0, output);
  return absl::OkStatus();
}

// Tokens [N, L, D], or [B, L, H, D] for H heads side by side (N = B H).
absl::Status RequireTokens(InferenceContext* c, int input, const char* op,
                           const char* name) {
  ShapeHandle shape = c->input(input);
  if (c->RankKnown(shape) && c->Rank(shape) != 3 && c->Rank(shape) != 4) {
    return errors::InvalidArgument(op, ": `", name,
                                   "` must be [N, L, D] or [B, L, H, D], got ",
                                   c->DebugString(shape));
  }
  return absl::OkStatus();
}

// N of tokens [N, L, D] or [B, L, H, D] (B H); `tokens` has a known rank.
absl::Status TokenRows(InferenceContext* c, ShapeHandle tokens,
                       shape_inference::DimensionHandle* rows) {
  if (c->Rank(tokens) == 3) {
    *rows = c->Dim(tokens, 0);
    return absl::OkStatus();
  }
  return c->Multiply(c->Dim(tokens, 0), c->Dim(tokens, 2), rows);
}

absl::Status ChunkAttentionShape(InferenceContext* c) {
  const char* op = "lsh_chunk_attention";
  TF_RETURN_IF_ERROR(RequireTokens(c, 0, op, "qk"));
  TF_RETURN_IF_ERROR(RequireTokens(c, 1, op, "v"));
  TF_RETURN_IF_ERROR(RequireRank(c, 2, 3, op, "permutation", "[N, R, L]"));
  TF_RETURN_IF_ERROR(RequireRank(c, 3, 0, op, "valid_length", "(a scalar)"));
  ShapeHandle tokens;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &tokens));
  if (!c->RankKnown(tokens)) {
    c->set_output(0, tokens);
    c->set_output(1, c->UnknownShapeOfRank(2));
    return absl::OkStatus();
  }
  shape_inference::DimensionHandle rows;
  TF_RETURN_IF_ERROR(TokenRows(c, tokens, &rows));
  c->set_output(0, tokens);
  c->set_output(1, c->MakeShape({rows, c->Dim(tokens, 1)}));
  return absl::OkStatus();
}

absl::Status HashShape(InferenceContext* c) {
  TF_RETURN_IF_ERROR(RequireTokens(c, 0, "lsh_hash", "qk"));
  TF_RETURN_IF_ERROR(
      RequireRank(c, 1, 3, "lsh_hash", "rotations", "[D, R, K]"));
  ShapeHandle qk = c->input(0), rotations = c->input(1);
  if (!c->RankKnown(qk) || !c->RankKnown(rotations)) {
    c->set_output(0, c->UnknownShapeOfRank(3));
    return absl::OkStatus();
  }
  shape_inference::DimensionHandle rows;
  TF_RETURN_IF_ERROR(TokenRows(c, qk, &rows));
  c->set_output(0, c->MakeShape({rows, c->Dim(rotations, 1), c->Dim(qk, 1)}));
  return absl::OkStatus();
}

// y as x; mean and rstd [M], M the product of x's leading dimensions.
absl::Status LayerNormShape(InferenceContext* c) {
  ShapeHandle x = c->input(0);
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(x, 1, &x));
  TF_RETURN_IF_ERROR(RequireRank(c, 1, 1, "layer_norm", "gamma", "[C]"));
  TF_RETURN_IF_ERROR(RequireRank(c, 2, 1, "layer_norm", "beta", "[C]"));
  ShapeHandle leading;
  TF_RETURN_IF_ERROR(c->Subshape(x, 0, -1, &leading));
  shape_inference::DimensionHandle rows = c->NumElements(leading);
  c->set_output(0, x);
  c->set_output(1, c->Vector(rows));
  c->set_output(2, c->Vector(rows));
  return absl::OkStatus();
}

absl::Status LayerNormGradShape(InferenceContext* c) {
  c->set_output(0, c->input(0));
  c->set_output(1, c->input(1));
  c->set_output(2, c->input(1));
  return absl::OkStatus();
}

absl::Status GroupNormShape(InferenceContext* c) {
  ShapeHandle x = c->input(0);
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(x, 2, &x));
  TF_RETURN_IF_ERROR(RequireRank(c, 1, 1, "group_norm", "gamma", "[C]"));
  TF_RETURN_IF_ERROR(RequireRank(c, 2, 1, "group_norm", "beta", "[C]"));
  int64_t groups;
  TF_RETURN_IF_ERROR(c->GetAttr("groups", &groups));
  ShapeHandle stats = c->Matrix(c->Dim(x, 0), groups);
  c->set_output(0, x);
  c->set_output(1, stats);
  c->set_output(2, stats);
  return absl::OkStatus();
}

absl::Status ChunkAttentionGradShape(InferenceContext* c) {
  c->set_output(0, c->input(0));
  c->set_output(1, c->input(1));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("TfResattn>LshHash")
    .Input("qk: float")
    .Input("rotations: float")
    .Input("num_buckets: int32")
    .Input("valid_length: int32")
    .Output("buckets: int32")
    .SetShapeFn(HashShape)
    .Doc(R"doc(
Angular LSH bucket ids (CPU): for round r, the index of the largest |x R_r|
over the first num_buckets / 2 rotation columns (first index on ties), plus
num_buckets / 2 when that entry is negative; positions >= valid_length get
bucket num_buckets.

qk: [N, L, D], or [B, L, H, D] for H heads side by side: row n of the
  buckets is head n % H of batch entry n / H (N = B H).
rotations: [D, R, K], K >= num_buckets / 2.
num_buckets: int32 scalar, even.
valid_length: int32 scalar.
buckets: int32 [N, R, L], values in [0, num_buckets].
)doc");

REGISTER_OP("TfResattn>LshChunkAttention")
    .Input("qk: float")
    .Input("v: float")
    .Input("permutation: int32")
    .Input("valid_length: int32")
    .Output("out: float")
    .Output("lse: float")
    .Attr("bucket_size: int >= 1")
    .SetShapeFn(ChunkAttentionShape)
    .Doc(R"doc(
The attention of multi-round LSH attention, fused (CPU).

Round r sorts the tokens by `permutation[n, r]`, cuts them into chunks of
`bucket_size` and lets each chunk attend to itself and the chunk before it
(shared query/key: keys are `qk` normalised to unit length, queries `qk`
scaled by D^-1/2; self-attention masked unless nothing else is available;
keys at positions >= valid_length and the first chunk's look-back masked).
The rounds are combined through the log-sum-exps of their logits, i.e. a
softmax over the union of the keys every round saw.

qk, v: [N, L, D] in the original token order, or [B, L, H, D] for H heads
  side by side (row n is head n % H of batch entry n / H, N = B H); L a
  multiple of bucket_size.
permutation: int32 [N, R, L]; row (n, r) is a permutation of [0, L).
valid_length: int32 scalar.
out: as qk, the combined attention output.
lse: [N, L], each query's log-sum-exp over all rounds' logits.
)doc");

REGISTER_OP("TfResattn>LshChunkAttentionGrad")
    .Input("qk: float")
    .Input("v: float")
    .Input("permutation: int32")
    .Input("valid_length: int32")
    .Input("out: float")
    .Input("lse: float")
    .Input("d_out: float")
    .Output("d_qk: float")
    .Output("d_v: float")
    .Attr("bucket_size: int >= 1")
    .SetShapeFn(ChunkAttentionGradShape)
    .Doc(R"doc(
Gradient of LshChunkAttention with respect to qk and v, given its outputs and
the gradient of `out`; recomputes each chunk's logits from `lse`.
)doc");

REGISTER_OP("TfResattn>LayerNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("rstd: float")
    .Attr("epsilon: float")
    .SetShapeFn(LayerNormShape)
    .Doc(R"doc(
Layer normalisation over the last axis (CPU): per row of C channels,
y = (x - mean) * rstd * gamma + beta with rstd = (var + epsilon)^-1/2.

x: [..., C].
gamma, beta: [C].
y: as x.
mean, rstd: [M], M the product of x's leading dimensions.
)doc");

REGISTER_OP("TfResattn>LayerNormGrad")
    .Input("x: float")
    .Input("gamma: float")
    .Input("mean: float")
    .Input("rstd: float")
    .Input("dy: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .SetShapeFn(LayerNormGradShape)
    .Doc(R"doc(
Gradient of LayerNorm with respect to x, gamma and beta, given the forward's
mean and rstd and the gradient dy of y.
)doc");

REGISTER_OP("TfResattn>GroupNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("rstd: float")
    .Attr("groups: int >= 1")
    .Attr("epsilon: float")
    .SetShapeFn(GroupNormShape)
    .Doc(R"doc(
Group normalisation of channels-last maps (CPU): the C channels form `groups`
groups of neighbours; per batch entry and group, over all pixels and the
group's channels, y = (x - mean) * rstd * gamma + beta with
rstd = (var + epsilon)^-1/2.

x: [B, ..., C], C a multiple of groups.
gamma, beta: [C].
y: as x.
mean, rstd: [B, groups].
)doc");

REGISTER_OP("TfResattn>GroupNormGrad")
    .Input("x: float")
    .Input("gamma: float")
    .Input("mean: float")
    .Input("rstd: float")
    .Input("dy: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .Attr("groups: int >= 1")
    .SetShapeFn(LayerNormGradShape)
    .Doc(R"doc(
Gradient of GroupNorm with respect to x, gamma and beta, given the forward's
mean and rstd and the gradient dy of y.
)doc");

REGISTER_OP("TfResattn>BucketSort")
    .Input("buckets: int32")
    .Input("num_buckets: int32")
    .Output("permutation: int32")
    .Output("inverse: int32")
    .SetShapeFn(BucketSortShape)
    .Doc(R"doc(
Stable sort of each row of bucket ids (ties keep their position order).

buckets: int32 [N, L], every value in [0, num_buckets).
num_buckets: int32 scalar, the number of buckets (>= 1).
permutation: int32 [N, L]; buckets[n, permutation[n]] is sorted.
inverse: int32 [N, L]; permutation[n, inverse[n, i]] == i.
)doc");

REGISTER_OP("TfResattn>PermuteGather")
    .Input("x: T")
    .Input("permutation: int32")
    .Input("inverse: int32")
    .Output("y: T")
    .Attr("T: {float, half, bfloat16}")
    .SetShapeFn(PermuteGatherShape)
    .Doc(R"doc(
Gathers rows by a permutation: y[n, i] = x[n, permutation[n, i]].

x: [N, L, D].
permutation: int32 [N, L], a permutation of [0, L) per row.
inverse: int32 [N, L], the inverse of `permutation`; the gradient with
  respect to x is PermuteGather(dy, inverse, permutation).
y: [N, L, D].
)doc");

REGISTER_OP("TfResattn>LibraryInfo")
    .Output("info: string")
    .SetShapeFn(shape_inference::ScalarShape)
    .Doc(R"doc(
Build facts of this library, `key=value` pairs joined by `;`
(tf_version, cxx11_abi, cuda, avx2_fma) and whether the running CPU has
AVX2 and FMA (cpu_avx2_fma), checked by the Python loader.
)doc");

}  // namespace tf_resattn
}  // namespace tensorflow
