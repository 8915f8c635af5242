// Registration and shape functions of the LSH sort/gather ops.
//
//   TfResattn>BucketSort(buckets int32 [N, L], num_buckets int32 scalar)
//       -> permutation int32 [N, L], inverse int32 [N, L]
//   TfResattn>PermuteGather(x T [N, L, D], permutation int32 [N, L],
//                           inverse int32 [N, L]) -> y T [N, L, D]
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

}  // namespace

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
(tf_version, cxx11_abi, cuda), checked by the Python loader.
)doc");

}  // namespace tf_resattn
}  // namespace tensorflow
