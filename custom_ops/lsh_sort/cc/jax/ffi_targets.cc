// Typed XLA FFI handlers of the CPU kernels, for JAX (`jax.ffi`): the sort,
// gather, hash and chunk attention (with its gradient), called inside
// XLA-compiled JAX functions as custom calls of these names (registered by
// tf_resattn/jax_ffi.py with `jax.ffi.register_ffi_target`):
//
//   tf_resattn_jax_bucket_sort   (buckets s32[N, L]; num_buckets)
//       -> (permutation, inverse) s32[N, L]
//   tf_resattn_jax_permute_gather (x [N, L, D] of 2- or 4-byte elements,
//       permutation s32[N, L]) -> y [N, L, D]
//   tf_resattn_jax_lsh_hash      (qk, rotations f32[D, R, K]; num_buckets,
//       valid_length) -> buckets s32[N, R, L]
//   tf_resattn_jax_lsh_chunk_attention (qk, v, permutation s32[N, R, L];
//       valid_length, bucket_size) -> (out, lse f32[N, L])
//   tf_resattn_jax_lsh_chunk_attention_grad (qk, v, permutation, out, lse,
//       d_out; valid_length, bucket_size) -> (d_qk, d_v)
//
// qk, v, out and their gradients are f32[B, L, H, D] (rows N = B H, read in
// place) or f32[N, L, D]; attributes (after the semicolons) are int64. The
// handlers read the shapes from the buffers and run the same kernel
// functions as the TensorFlow op kernels and the TensorFlow-XLA targets
// (cc/kernels/, compiled here with TF_RESATTN_KERNELS_ONLY: no TensorFlow,
// no Abseil), on a thread pool of this library. A check that fails (an id
// outside its range, a length that is no multiple of the bucket size) fails
// the call with an InvalidArgument error, which JAX raises.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "custom_ops/lsh_sort/cc/kernels/bucket_sort_op.h"
#include "custom_ops/lsh_sort/cc/kernels/chunk_attention_op.h"
#include "custom_ops/lsh_sort/cc/kernels/host_device.h"
#include "custom_ops/lsh_sort/cc/kernels/lsh_hash_op.h"
#include "custom_ops/lsh_sort/cc/kernels/permute_gather_op.h"
#include "unsupported/Eigen/CXX11/Tensor"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

std::string Str(int64_t value) { return std::to_string(value); }

// Tokens [B, L, H, D], or [N, L, D] as [N, L, 1, D]: (batch, L, H, D).
struct TokenDims {
  int64_t batch, length, heads, depth;
};

bool ReadTokenDims(ffi::AnyBuffer::Dimensions dims, TokenDims* t) {
  if (dims.size() == 4) {
    *t = TokenDims{dims[0], dims[1], dims[2], dims[3]};
    return true;
  }
  if (dims.size() == 3) {
    *t = TokenDims{dims[0], dims[1], 1, dims[2]};
    return true;
  }
  return false;
}

ffi::Error BucketSortImpl(ffi::Buffer<ffi::S32> buckets, int64_t num_buckets,
                          ffi::ResultBuffer<ffi::S32> permutation,
                          ffi::ResultBuffer<ffi::S32> inverse) {
  const auto dims = buckets.dimensions();
  if (dims.size() != 2) {
    return ffi::Error::InvalidArgument(
        "bucket_sort: `buckets` must have rank 2 [N, L]");
  }
  const int64_t rows = dims[0], length = dims[1];
  const int32_t* ids = buckets.typed_data();
  const int64_t invalid = functor::BucketSort<CPUDevice>()(
      HostDevice(), ids, rows, length, static_cast<int32_t>(num_buckets),
      /*scratch=*/nullptr, permutation->typed_data(), inverse->typed_data());
  if (invalid >= 0) {
    return ffi::Error::InvalidArgument(
        "bucket_sort: `buckets`[" + Str(invalid / length) + ", " +
        Str(invalid % length) + "] = " + Str(ids[invalid]) +
        " is outside [0, " + Str(num_buckets) + ")");
  }
  return ffi::Error::Success();
}

ffi::Error PermuteGatherImpl(ffi::AnyBuffer x, ffi::Buffer<ffi::S32> permutation,
                             ffi::Result<ffi::AnyBuffer> y) {
  const auto dims = x.dimensions();
  if (dims.size() != 3) {
    return ffi::Error::InvalidArgument(
        "permute_gather: `x` must have rank 3 [N, L, D]");
  }
  const int64_t rows = dims[0], length = dims[1], depth = dims[2];
  const int32_t* order = permutation.typed_data();
  const size_t width = ffi::ByteWidth(x.element_type());
  int64_t invalid;
  if (width == 4) {
    invalid = functor::PermuteGather<CPUDevice, float>()(
        HostDevice(), static_cast<const float*>(x.untyped_data()), order, rows,
        length, depth, static_cast<float*>(y->untyped_data()));
  } else if (width == 2) {
    invalid = functor::PermuteGather<CPUDevice, uint16_t>()(
        HostDevice(), static_cast<const uint16_t*>(x.untyped_data()), order,
        rows, length, depth, static_cast<uint16_t*>(y->untyped_data()));
  } else {
    return ffi::Error::InvalidArgument(
        "permute_gather: elements of 2 or 4 bytes only");
  }
  if (invalid >= 0) {
    return ffi::Error::InvalidArgument(
        "permute_gather: `permutation`[" + Str(invalid / length) + ", " +
        Str(invalid % length) + "] = " + Str(order[invalid]) +
        " is outside [0, " + Str(length) + ")");
  }
  return ffi::Error::Success();
}

ffi::Error LshHashImpl(ffi::Buffer<ffi::F32> qk, ffi::Buffer<ffi::F32> rotations,
                       int64_t num_buckets, int64_t valid_length,
                       ffi::ResultBuffer<ffi::S32> ids) {
  TokenDims t;
  const auto rotation_dims = rotations.dimensions();
  if (!ReadTokenDims(qk.dimensions(), &t) || rotation_dims.size() != 3 ||
      rotation_dims[0] != t.depth) {
    return ffi::Error::InvalidArgument(
        "lsh_hash: `qk` [N, L, D] or [B, L, H, D] and `rotations` [D, R, K]");
  }
  const std::string error =
      NumBucketsError(static_cast<int32_t>(num_buckets), rotation_dims[2]);
  if (!error.empty()) return ffi::Error::InvalidArgument(error);
  const HashDims d{t.batch * t.heads, t.heads,          t.length,
                   t.depth,           rotation_dims[1], rotation_dims[2]};
  LshHashCpu(HostDevice(), d, qk.typed_data(), rotations.typed_data(),
             static_cast<int32_t>(num_buckets), valid_length,
             ids->typed_data());
  return ffi::Error::Success();
}

// The shapes of a chunk-attention call, checked as the op kernels check them.
ffi::Error ReadChunkDims(const char* op, ffi::Buffer<ffi::F32>& qk,
                         ffi::Buffer<ffi::S32>& permutation,
                         int64_t valid_length, int64_t bucket_size,
                         ChunkDims* d) {
  TokenDims t;
  const auto order = permutation.dimensions();
  if (!ReadTokenDims(qk.dimensions(), &t) || order.size() != 3 ||
      order[0] != t.batch * t.heads || order[2] != t.length) {
    return ffi::Error::InvalidArgument(
        std::string(op) +
        ": `qk` [N, L, D] or [B, L, H, D] and `permutation` [N, R, L]");
  }
  if (bucket_size < 1) {
    return ffi::Error::InvalidArgument(std::string(op) + ": bucket_size < 1");
  }
  *d = ChunkDims{t.batch * t.heads, t.heads, order[1],    t.length, t.depth,
                 bucket_size,       /*chunks=*/0, valid_length};
  const std::string error = ChunkDimsError(op, permutation.typed_data(), d);
  if (!error.empty()) return ffi::Error::InvalidArgument(error);
  return ffi::Error::Success();
}

ffi::Error ChunkAttentionImpl(ffi::Buffer<ffi::F32> qk, ffi::Buffer<ffi::F32> v,
                              ffi::Buffer<ffi::S32> permutation,
                              int64_t valid_length, int64_t bucket_size,
                              ffi::ResultBuffer<ffi::F32> out,
                              ffi::ResultBuffer<ffi::F32> lse) {
  ChunkDims d;
  ffi::Error error = ReadChunkDims("lsh_chunk_attention", qk, permutation,
                                   valid_length, bucket_size, &d);
  if (error.failure()) return error;
  AlignedFloats scratch = AllocateFloats(ChunkAttentionScratchFloats(d));
  if (scratch == nullptr) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "lsh_chunk_attention: out of memory");
  }
  ChunkAttentionForward(HostDevice(), d, qk.typed_data(), v.typed_data(),
                        permutation.typed_data(), scratch.get(),
                        out->typed_data(), lse->typed_data());
  return ffi::Error::Success();
}

ffi::Error ChunkAttentionGradImpl(
    ffi::Buffer<ffi::F32> qk, ffi::Buffer<ffi::F32> v,
    ffi::Buffer<ffi::S32> permutation, ffi::Buffer<ffi::F32> out,
    ffi::Buffer<ffi::F32> lse, ffi::Buffer<ffi::F32> d_out,
    int64_t valid_length, int64_t bucket_size,
    ffi::ResultBuffer<ffi::F32> d_qk, ffi::ResultBuffer<ffi::F32> d_v) {
  ChunkDims d;
  ffi::Error error = ReadChunkDims("lsh_chunk_attention_grad", qk, permutation,
                                   valid_length, bucket_size, &d);
  if (error.failure()) return error;
  AlignedFloats scratch = AllocateFloats(ChunkAttentionGradScratchFloats(d));
  if (scratch == nullptr) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "lsh_chunk_attention_grad: out of memory");
  }
  ChunkAttentionBackward(HostDevice(), d, qk.typed_data(), v.typed_data(),
                         permutation.typed_data(), out.typed_data(),
                         lse.typed_data(), d_out.typed_data(), scratch.get(),
                         d_qk->typed_data(), d_v->typed_data());
  return ffi::Error::Success();
}

}  // namespace
}  // namespace tf_resattn
}  // namespace tensorflow

namespace tfr = tensorflow::tf_resattn;

XLA_FFI_DEFINE_HANDLER_SYMBOL(TfResattnJaxBucketSort, tfr::BucketSortImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("num_buckets")
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(TfResattnJaxPermuteGather,
                              tfr::PermuteGatherImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(TfResattnJaxLshHash, tfr::LshHashImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("num_buckets")
                                  .Attr<int64_t>("valid_length")
                                  .Ret<ffi::Buffer<ffi::S32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(TfResattnJaxLshChunkAttention,
                              tfr::ChunkAttentionImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("valid_length")
                                  .Attr<int64_t>("bucket_size")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(TfResattnJaxLshChunkAttentionGrad,
                              tfr::ChunkAttentionGradImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("valid_length")
                                  .Attr<int64_t>("bucket_size")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

// Build facts for the loader (tf_resattn/jax_ffi.py), "key=value;...":
// whether the kernels were compiled with AVX2 and FMA, and whether the
// running CPU has both (the loader refuses the first without the second).
extern "C" const char* TfResattnJaxFfiInfo() {
#if defined(__x86_64__) || defined(__i386__)
  const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const bool cpu = false;
#endif
#if defined(__AVX2__) && defined(__FMA__)
  return cpu ? "avx2_fma=1;cpu_avx2_fma=1" : "avx2_fma=1;cpu_avx2_fma=0";
#else
  return cpu ? "avx2_fma=0;cpu_avx2_fma=1" : "avx2_fma=0;cpu_avx2_fma=0";
#endif
}
