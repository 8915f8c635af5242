// XLA custom-call targets for the Host platform (XLA on the CPU): the sort,
// gather, hash, chunk-attention, layer-norm and group-norm kernels, called
// inside XLA-compiled functions as `custom-call`s of these names
// (tf_resattn/ops/xla_calls.py emits them). Each target reads its shapes
// from the backend config (see custom_call.h) and runs the same kernel
// function as the op kernel, on a thread pool of this library (the
// status-returning API passes none).
//
//   tf_resattn_bucket_sort        (buckets [N, L]) "N L num_buckets"
//       -> (permutation, inverse) int32 [N, L]
//   tf_resattn_permute_gather     (x [N, L, D], permutation [N, L])
//       "N L D element_bytes" -> y [N, L, D]
//   tf_resattn_lsh_hash           (qk, rotations [D, R, K], num_buckets,
//       valid_length) "B L H D R K" -> buckets int32 [B H, R, L]
//   tf_resattn_lsh_chunk_attention (qk, v, permutation [B H, R, L],
//       valid_length) "B L H D R b" -> (out, lse [B H, L])
//   tf_resattn_lsh_chunk_attention_grad (qk, v, permutation, valid_length,
//       out, lse, d_out) "B L H D R b" -> (d_qk, d_v)
//   tf_resattn_layer_norm         (x [M, C], gamma, beta [C], epsilon) "M C"
//       -> (y [M, C], mean, rstd [M])
//   tf_resattn_layer_norm_grad    (x, gamma, mean, rstd, dy) "M C"
//       -> (dx [M, C], dgamma, dbeta [C])
//   tf_resattn_group_norm         (x [B, P, C], gamma, beta [C], epsilon)
//       "B P C G" -> (y [B, P, C], mean, rstd [B, G])
//   tf_resattn_group_norm_grad    (x, gamma, mean, rstd, dy) "B P C G"
//       -> (dx [B, P, C], dgamma, dbeta [C])
//
// qk, v and their gradients are [B, L, H, D] (H = 1 for [N, L, D]); float32
// throughout except the gather, which moves elements of 2 or 4 bytes;
// epsilon is a float32 scalar.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"
#include "custom_ops/lsh_sort/cc/kernels/chunk_attention_op.h"
#include "custom_ops/lsh_sort/cc/kernels/host_device.h"
#include "custom_ops/lsh_sort/cc/kernels/group_norm_op.h"
#include "custom_ops/lsh_sort/cc/kernels/layer_norm_op.h"
#include "custom_ops/lsh_sort/cc/kernels/lsh_hash_op.h"
#include "custom_ops/lsh_sort/cc/kernels/permute_gather_op.h"
#include "custom_ops/lsh_sort/cc/xla/custom_call.h"
#include "unsupported/Eigen/CXX11/Tensor"
#include "xla/service/custom_call_target_registry.h"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

// Allocates the scratch of `floats` floats and runs `kernel(scratch)`; a
// failure to allocate goes to `status` instead.
template <typename Kernel>
void WithScratch(const char* op, int64_t floats, XlaCustomCallStatus* status,
                 Kernel kernel) {
  AlignedFloats scratch = AllocateFloats(std::max<int64_t>(floats, 1));
  if (scratch == nullptr) {
    return SetFailure(status, absl::StrCat(op, ": out of memory"));
  }
  kernel(scratch.get());
}

void BucketSortHost(void* out, const void** in, const char* opaque,
                    size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t config[3];
  if (!ReadConfig(opaque, opaque_len, 3, config)) {
    return SetFailure(status, "tf_resattn_bucket_sort: bad backend config");
  }
  const auto [rows, length, num_buckets] = config;
  void** results = static_cast<void**>(out);
  const int32_t* buckets = static_cast<const int32_t*>(in[0]);
  const int64_t invalid = functor::BucketSort<CPUDevice>()(
      HostDevice(), buckets, rows, length, static_cast<int32_t>(num_buckets),
      /*scratch=*/nullptr, static_cast<int32_t*>(results[0]),
      static_cast<int32_t*>(results[1]));
  if (invalid >= 0) {
    SetFailure(status, absl::StrCat("bucket_sort: `buckets`[", invalid / length,
                                    ", ", invalid % length, "] = ",
                                    buckets[invalid], " is outside [0, ",
                                    num_buckets, ")"));
  }
}

void PermuteGatherHost(void* out, const void** in, const char* opaque,
                       size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t config[4];
  if (!ReadGatherConfig(opaque, opaque_len, config)) {
    return SetFailure(status, "tf_resattn_permute_gather: bad backend config");
  }
  const auto [rows, length, depth, element_bytes] = config;
  const int32_t* permutation = static_cast<const int32_t*>(in[1]);
  const int64_t invalid =
      element_bytes == 4
          ? functor::PermuteGather<CPUDevice, float>()(
                HostDevice(), static_cast<const float*>(in[0]), permutation,
                rows, length, depth, static_cast<float*>(out))
          : functor::PermuteGather<CPUDevice, uint16_t>()(
                HostDevice(), static_cast<const uint16_t*>(in[0]), permutation,
                rows, length, depth, static_cast<uint16_t*>(out));
  if (invalid >= 0) {
    SetFailure(status, absl::StrCat("permute_gather: `permutation`[",
                                    invalid / length, ", ", invalid % length,
                                    "] = ", permutation[invalid],
                                    " is outside [0, ", length, ")"));
  }
}

void LshHashHost(void* out, const void** in, const char* opaque,
                 size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t config[6];
  if (!ReadConfig(opaque, opaque_len, 6, config)) {
    return SetFailure(status, "tf_resattn_lsh_hash: bad backend config");
  }
  const auto [batch, length, heads, depth, rounds, columns] = config;
  const int32_t num_buckets = *static_cast<const int32_t*>(in[2]);
  const absl::Status valid = CheckNumBuckets(num_buckets, columns);
  if (!valid.ok()) return SetFailure(status, valid);
  const HashDims d{batch * heads, heads, length, depth, rounds, columns};
  LshHashCpu(HostDevice(), d, static_cast<const float*>(in[0]),
             static_cast<const float*>(in[1]), num_buckets,
             *static_cast<const int32_t*>(in[3]), static_cast<int32_t*>(out));
}

// The shapes of a chunk-attention call, checked as the op kernels check them.
absl::Status ReadChunkDims(const char* op, const char* opaque,
                           size_t opaque_len, const void** in, ChunkDims* d) {
  int64_t config[6];
  if (!ReadConfig(opaque, opaque_len, 6, config)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": bad backend config"));
  }
  const auto [batch, length, heads, depth, rounds, bucket] = config;
  *d = ChunkDims{batch * heads, heads, rounds, length, depth, bucket,
                 /*chunks=*/0, *static_cast<const int32_t*>(in[3])};
  if (bucket < 1) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": bucket_size < 1"));
  }
  return CheckChunkDims(op, static_cast<const int32_t*>(in[2]), d);
}

// Reads the shapes, allocates the scratch of `scratch_floats(d)` floats and
// runs `kernel(d, scratch)`; a failure goes to `status` instead.
template <typename Kernel>
void RunChunkKernel(const char* op, int64_t (*scratch_floats)(const ChunkDims&),
                    const char* opaque, size_t opaque_len, const void** in,
                    XlaCustomCallStatus* status, Kernel kernel) {
  ChunkDims d;
  const absl::Status valid = ReadChunkDims(op, opaque, opaque_len, in, &d);
  if (!valid.ok()) return SetFailure(status, valid);
  WithScratch(op, scratch_floats(d), status,
              [&](float* scratch) { kernel(d, scratch); });
}

void LshChunkAttentionHost(void* out, const void** in, const char* opaque,
                           size_t opaque_len, XlaCustomCallStatus* status) {
  void** results = static_cast<void**>(out);
  RunChunkKernel(
      "lsh_chunk_attention", ChunkAttentionScratchFloats, opaque, opaque_len,
      in, status, [&](const ChunkDims& d, float* scratch) {
        ChunkAttentionForward(HostDevice(), d, static_cast<const float*>(in[0]),
                              static_cast<const float*>(in[1]),
                              static_cast<const int32_t*>(in[2]), scratch,
                              static_cast<float*>(results[0]),
                              static_cast<float*>(results[1]));
      });
}

void LshChunkAttentionGradHost(void* out, const void** in, const char* opaque,
                               size_t opaque_len, XlaCustomCallStatus* status) {
  void** results = static_cast<void**>(out);
  RunChunkKernel(
      "lsh_chunk_attention_grad", ChunkAttentionGradScratchFloats, opaque,
      opaque_len, in, status, [&](const ChunkDims& d, float* scratch) {
        ChunkAttentionBackward(
            HostDevice(), d, static_cast<const float*>(in[0]),
            static_cast<const float*>(in[1]),
            static_cast<const int32_t*>(in[2]),
            static_cast<const float*>(in[4]), static_cast<const float*>(in[5]),
            static_cast<const float*>(in[6]), scratch,
            static_cast<float*>(results[0]), static_cast<float*>(results[1]));
      });
}

// Reads the layer norm's config "M C" (C > 0) into `rows`, `channels`.
bool ReadLayerNormConfig(const char* opaque, size_t opaque_len, int64_t* rows,
                         int64_t* channels) {
  int64_t config[2];
  if (!ReadConfig(opaque, opaque_len, 2, config) || config[1] < 1) {
    return false;
  }
  *rows = config[0];
  *channels = config[1];
  return true;
}

void LayerNormHost(void* out, const void** in, const char* opaque,
                   size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t rows, channels;
  if (!ReadLayerNormConfig(opaque, opaque_len, &rows, &channels)) {
    return SetFailure(status, "tf_resattn_layer_norm: bad backend config");
  }
  float** results = static_cast<float**>(out);
  LayerNormForward(HostDevice(), rows, channels,
                   static_cast<const float*>(in[0]),
                   static_cast<const float*>(in[1]),
                   static_cast<const float*>(in[2]),
                   *static_cast<const float*>(in[3]), results[0], results[1],
                   results[2]);
}

void LayerNormGradHost(void* out, const void** in, const char* opaque,
                       size_t opaque_len, XlaCustomCallStatus* status) {
  int64_t rows, channels;
  if (!ReadLayerNormConfig(opaque, opaque_len, &rows, &channels)) {
    return SetFailure(status, "tf_resattn_layer_norm_grad: bad backend config");
  }
  float** results = static_cast<float**>(out);
  WithScratch("layer_norm_grad", LayerNormGradScratchFloats(rows, channels),
              status, [&](float* scratch) {
                LayerNormBackward(
                    HostDevice(), rows, channels,
                    static_cast<const float*>(in[0]),
                    static_cast<const float*>(in[1]),
                    static_cast<const float*>(in[2]),
                    static_cast<const float*>(in[3]),
                    static_cast<const float*>(in[4]), scratch, results[0],
                    results[1], results[2]);
              });
}

// Reads the group norm's config "B P C G" (C > 0, a multiple of G >= 1),
// allocates the scratch of `scratch_floats(layout)` floats and runs
// `kernel(layout, scratch)`; a failure goes to `status` instead.
template <typename Kernel>
void RunGroupNormKernel(const char* op,
                        int64_t (*scratch_floats)(const GroupNormLayout&),
                        const char* opaque, size_t opaque_len,
                        XlaCustomCallStatus* status, Kernel kernel) {
  int64_t config[4];
  if (!ReadConfig(opaque, opaque_len, 4, config) || config[2] < 1 ||
      config[3] < 1 || config[2] % config[3] != 0) {
    return SetFailure(status, absl::StrCat(op, ": bad backend config"));
  }
  const GroupNormLayout layout =
      MakeGroupNormLayout(config[0], config[1], config[2], config[3]);
  WithScratch(op, scratch_floats(layout), status,
              [&](float* scratch) { kernel(layout, scratch); });
}

void GroupNormHost(void* out, const void** in, const char* opaque,
                   size_t opaque_len, XlaCustomCallStatus* status) {
  float** results = static_cast<float**>(out);
  RunGroupNormKernel(
      "tf_resattn_group_norm", GroupNormScratchFloats, opaque, opaque_len,
      status, [&](const GroupNormLayout& layout, float* scratch) {
        GroupNormForward(HostDevice(), layout, static_cast<const float*>(in[0]),
                         static_cast<const float*>(in[1]),
                         static_cast<const float*>(in[2]),
                         *static_cast<const float*>(in[3]), scratch,
                         results[0], results[1], results[2]);
      });
}

void GroupNormGradHost(void* out, const void** in, const char* opaque,
                       size_t opaque_len, XlaCustomCallStatus* status) {
  float** results = static_cast<float**>(out);
  RunGroupNormKernel(
      "tf_resattn_group_norm_grad", GroupNormGradScratchFloats, opaque,
      opaque_len, status, [&](const GroupNormLayout& layout, float* scratch) {
        GroupNormBackward(HostDevice(), layout,
                          static_cast<const float*>(in[0]),
                          static_cast<const float*>(in[1]),
                          static_cast<const float*>(in[2]),
                          static_cast<const float*>(in[3]),
                          static_cast<const float*>(in[4]), scratch,
                          results[0], results[1], results[2]);
      });
}

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow

XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_bucket_sort", tensorflow::tf_resattn::BucketSortHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_permute_gather", tensorflow::tf_resattn::PermuteGatherHost,
    "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_lsh_hash", tensorflow::tf_resattn::LshHashHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_lsh_chunk_attention",
    tensorflow::tf_resattn::LshChunkAttentionHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_lsh_chunk_attention_grad",
    tensorflow::tf_resattn::LshChunkAttentionGradHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_layer_norm", tensorflow::tf_resattn::LayerNormHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_layer_norm_grad", tensorflow::tf_resattn::LayerNormGradHost,
    "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_group_norm", tensorflow::tf_resattn::GroupNormHost, "Host");
XLA_REGISTER_CUSTOM_CALL_TARGET_WITH_SYM(
    "tf_resattn_group_norm_grad", tensorflow::tf_resattn::GroupNormGradHost,
    "Host");

extern "C" const char* TfResattnXlaPlatforms() {
#if GOOGLE_CUDA
  return "Host,CUDA";
#else
  return "Host";
#endif  // GOOGLE_CUDA
}
