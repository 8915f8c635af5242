// TfResattn>LshChunkAttention and its gradient: the attention half of
// multi-round LSH attention, fused, on the CPU.
//
// The batch rows are taken a few at a time (a pass of about kTokensPerPass
// tokens), and each pass round by round, in two steps:
// 1. gather: one work item per chunk reads its b tokens in sorted order,
//    normalises the keys and lays them out as b x D planes (rows) and D x b
//    planes (transposed), as the products below read them;
// 2. attend: one work item per chunk multiplies its b queries with its 2b
//    keys (the chunk, then the chunk before it) straight from those planes,
//    takes the masked softmax in a b x 2b scratch buffer, and writes its
//    results back to the queries' original positions.
// The forward folds each round into the output as it goes (a running
// log-sum-exp per token), so only the output and the final log-sum-exp are
// kept. The gradient recomputes every chunk's logits and weighs them by that
// log-sum-exp, which gives each key's weight within the softmax over all
// rounds at once (as FlashAttention does across blocks).
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
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "Eigen/Core"
#include "custom_ops/lsh_sort/cc/kernels/chunk_attention_op.h"
#include "custom_ops/lsh_sort/cc/kernels/row_math.h"
#include "custom_ops/lsh_sort/cc/kernels/small_gemm.h"
#ifndef TF_RESATTN_KERNELS_ONLY
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#endif  // TF_RESATTN_KERNELS_ONLY
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace tf_resattn {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;
// Per-thread scratch. Eigen aligns its allocations, so its vectorised sums
// split every row the same way on every call: the results are reproducible.
using Scratch = Eigen::VectorXf;
using Plain = Operand<false>;
using Transposed = Operand<true>;

// Mask logits of float32, as `mask_values` in lsh_attention.py.
constexpr float kSelfMask = -1e5f;
constexpr float kPaddingMask = -1e9f;
// The epsilon of `l2_normalize` in lsh_attention.py.
constexpr float kNormEpsilon = 1e-6f;
// Tokens per pass: enough chunks to keep every thread busy, little enough
// scratch (a few MiB) to stay in the caches between the two steps.
constexpr int64_t kTokensPerPass = 16384;



// Index of the first float of token `token` of row `row` in a tensor laid
// out as the tokens are.
int64_t TokenOffset(const ChunkDims& d, int64_t row, int64_t token) {
  return ((row / d.heads * d.length + token) * d.heads + row % d.heads) *
         d.depth;
}

// The chunks of one pass (rows [first_row, first_row + rows)) in one round.
// Work item `item` is chunk item % chunks of row first_row + item / chunks;
// its planes start at item * b * D in every [rows, L, D] plane buffer, its
// per-token values at item * b in every [rows, L] buffer.
struct Pass {
  const ChunkDims& d;
  int64_t first_row, rows, round;
  const int32_t* permutation;  // [N, R, L]

  int64_t Items() const { return rows * d.chunks; }
  int64_t Row(int64_t item) const { return first_row + item / d.chunks; }
  int64_t Chunk(int64_t item) const { return item % d.chunks; }
  // The work item of the chunk before `item`'s (cyclically, in its row).
  int64_t Previous(int64_t item) const {
    const int64_t chunk = Chunk(item);
    return item - chunk + (chunk + d.chunks - 1) % d.chunks;
  }
  // The original positions of `item`'s b tokens.
  const int32_t* Tokens(int64_t item) const {
    return permutation + (Row(item) * d.rounds + round) * d.length +
           Chunk(item) * d.bucket;
  }
  template <typename T>
  T* Plane(T* buffer, int64_t item) const {
    return buffer + item * d.bucket * d.depth;
  }
  template <typename T>
  T* Values(T* buffer, int64_t item) const {
    return buffer + item * d.bucket;
  }
};

// Prefetches the [D] floats of token `token` of row `row` of `data`.
void PrefetchToken(const ChunkDims& d, const float* data, int64_t row,
                   int64_t token) {
  const char* start =
      reinterpret_cast<const char*>(data + TokenOffset(d, row, token));
  for (int64_t byte = 0; byte < d.depth * int64_t{sizeof(float)};
       byte += 64) {
    __builtin_prefetch(start + byte);
  }
}

// Prefetches the rows of work item `item`'s tokens in each of `sources`
// (laid out as the tokens are). The tokens lie anywhere in their row, so a
// chunk's reads miss the caches: the loops below ask for the next chunk's
// rows while they work on the current one.
void PrefetchChunk(const ChunkDims& d, const Pass& pass, int64_t item,
                   std::initializer_list<const float*> sources) {
  const int64_t row = pass.Row(item);
  const int32_t* tokens = pass.Tokens(item);
  for (int64_t i = 0; i < d.bucket; ++i) {
    for (const float* source : sources) {
      PrefetchToken(d, source, row, tokens[i]);
    }
  }
}

// Prefetches the chunks a loop over work items [item, end) reads next:
// item's own when it is the first (`begin`), and item + 1's.
void PrefetchNext(const ChunkDims& d, const Pass& pass, int64_t item,
                  int64_t begin, int64_t end,
                  std::initializer_list<const float*> sources) {
  if (item == begin) PrefetchChunk(d, pass, item, sources);
  if (item + 1 < end) PrefetchChunk(d, pass, item + 1, sources);
}

// Reads the [D] floats of a chunk's tokens in `source` (laid out as the
// tokens are) into the row-major b x D `plane`.
void GatherRows(const ChunkDims& d, const float* source, int64_t row,
                const int32_t* tokens, float* plane) {
  for (int64_t i = 0; i < d.bucket; ++i) {
    row_math::Copy(source + TokenOffset(d, row, tokens[i]),
                   plane + i * d.depth, d.depth);
  }
}

// A chunk's keys: `keys` (b x D, rows) = its tokens' qk normalised to unit
// length, `keys_transposed` (D x b) the same transposed, `inverse_norms`
// (b) the factors 1 / |qk| that normalised them.
void GatherKeys(const ChunkDims& d, const float* qk, int64_t row,
                const int32_t* tokens, float* keys, float* keys_transposed,
                float* inverse_norms) {
  GatherRows(d, qk, row, tokens, keys);
  for (int64_t i = 0; i < d.bucket; ++i) {
    float* key = keys + i * d.depth;
    const float squares = row_math::Dot(key, key, d.depth);
    inverse_norms[i] = 1.0f / std::sqrt(squares + kNormEpsilon);
    row_math::Scaled(inverse_norms[i], key, key, d.depth);
  }
  Transpose(d.bucket, d.depth, keys, d.depth, keys_transposed, d.bucket);
}

// The b x 2b logits of a chunk's queries (its own tokens) against its keys
// (its own tokens, then those of the previous chunk), masks included:
// logit = (qk_i D^-1/2) . key_j = query_scale_i (key_i . key_j), where
// query_scale_i = D^-1/2 / inverse_norm_i, i.e. D^-1/2 |qk_i| up to the
// normalisation's epsilon. `key_bias` is scratch of 2b floats; `tops` (b)
// gets each query's largest logit.
void ChunkLogits(const ChunkDims& d, const Pass& pass, int64_t item,
                 const float* keys_transposed, const float* inverse_norms,
                 float* key_bias, float* logits, float* tops) {
  const int64_t b = d.bucket, previous = pass.Previous(item);
  const float* own = pass.Plane(keys_transposed, item);
  const Transposed queries{own, b};
  SmallGemm(b, b, d.depth, queries, own, b, logits, 2 * b, false);
  SmallGemm(b, b, d.depth, queries, pass.Plane(keys_transposed, previous), b,
            logits + b, 2 * b, false);

  const int32_t* own_tokens = pass.Tokens(item);
  const int32_t* previous_tokens = pass.Tokens(previous);
  const bool first_chunk = pass.Chunk(item) == 0;
  for (int64_t j = 0; j < b; ++j) {
    key_bias[j] = own_tokens[j] >= d.valid_length ? kPaddingMask : 0.0f;
    key_bias[b + j] = first_chunk || previous_tokens[j] >= d.valid_length
                          ? kPaddingMask
                          : 0.0f;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.depth));
  const float* norms = pass.Values(inverse_norms, item);
  for (int64_t i = 0; i < b; ++i) {
    // The query meets itself at key i: its bias carries the self mask.
    const float bias = key_bias[i];
    key_bias[i] = bias + kSelfMask;
    tops[i] = row_math::ScaleBiasMax(logits + i * 2 * b, scale / norms[i],
                                     key_bias, 2 * b);
    key_bias[i] = bias;
  }
}

// Cuts `requests` (count, &data) out of `base`, each start 64-byte aligned
// (as TensorFlow's allocator aligns, so Eigen's vectorised sums split rows
// the same way on both paths); returns the floats used. With `base` null it
// only counts.
int64_t Carve(float* base,
              std::initializer_list<std::pair<int64_t, float**>> requests) {
  constexpr int64_t kAlign = 64 / sizeof(float);
  int64_t used = 0;
  for (const auto& [count, data] : requests) {
    *data = base == nullptr ? nullptr : base + used;
    used += (count + kAlign - 1) / kAlign * kAlign;
  }
  return used;
}

// Cost of one chunk for the thread pool's sharding: `products` matrix
// products of b x 2b x D multiply-adds each.
Eigen::TensorOpCost ChunkCost(const ChunkDims& d, double products) {
  const double bytes = 2.0 * d.bucket * d.depth * sizeof(float);
  return Eigen::TensorOpCost(bytes * products, bytes,
                             products * 4.0 * d.bucket * d.bucket * d.depth);
}

// Cost of gathering one chunk's tokens, `planes` rows of D floats each.
Eigen::TensorOpCost GatherCost(const ChunkDims& d, double planes) {
  const double bytes = planes * d.bucket * d.depth * sizeof(float);
  return Eigen::TensorOpCost(bytes, bytes, planes * 4.0 * d.bucket * d.depth);
}

// Batch rows per pass: about kTokensPerPass tokens, at least one row.
int64_t RowsPerPass(const ChunkDims& d) {
  return std::max<int64_t>(1, std::min(d.rows, kTokensPerPass / d.length));
}

// Tokens of the largest pass: the scratch buffers' length.
int64_t PassCapacity(const ChunkDims& d) { return RowsPerPass(d) * d.length; }

// Runs `body(pass)` for every pass and round, in order.
template <typename Body>
void ForEachPass(const ChunkDims& d, const int32_t* permutation, Body body) {
  const int64_t rows_per_pass = RowsPerPass(d);
  for (int64_t first = 0; first < d.rows; first += rows_per_pass) {
    const int64_t rows = std::min(rows_per_pass, d.rows - first);
    for (int64_t round = 0; round < d.rounds; ++round) {
      body(Pass{d, first, rows, round, permutation});
    }
  }
}

// The forward's scratch, per pass in sorted order: the keys transposed and
// the values as rows (planes), and each token's inverse norm.
struct ForwardScratch {
  float *keys_transposed, *values, *inverse_norms;

  int64_t Layout(const ChunkDims& d, float* base) {
    const int64_t capacity = PassCapacity(d);
    return Carve(base, {{capacity * d.depth, &keys_transposed},
                        {capacity * d.depth, &values},
                        {capacity, &inverse_norms}});
  }
};

// The gradient's scratch, per pass in sorted order: the keys as rows and
// transposed, the values transposed, the upstream gradients as rows
// (planes), each token's inverse norm, lse and g . out; `own` and `back`
// [rows, L, 2D] the (d qk, d v) a token gets as a query or key of its own
// chunk, and as a look-back key of the next chunk; and `dots` [N, L], g . out
// per token, once for all rounds.
struct GradScratch {
  float *keys, *keys_transposed, *values_transposed, *upstream;
  float *inverse_norms, *sorted_lse, *sorted_dots, *own, *back, *dots;

  int64_t Layout(const ChunkDims& d, float* base) {
    const int64_t capacity = PassCapacity(d), depth = d.depth;
    return Carve(base, {{capacity * depth, &keys},
                        {capacity * depth, &keys_transposed},
                        {capacity * depth, &values_transposed},
                        {capacity * depth, &upstream},
                        {capacity, &inverse_norms},
                        {capacity, &sorted_lse},
                        {capacity, &sorted_dots},
                        {capacity * 2 * depth, &own},
                        {capacity * 2 * depth, &back},
                        {d.rows * d.length, &dots}});
  }
};

}  // namespace

std::string ChunkDimsError(const char* op, const int32_t* permutation,
                           ChunkDims* d) {
  if (d->length == 0 || d->length % d->bucket != 0) {
    return std::string(op) + ": L = " + std::to_string(d->length) +
           " must be a positive multiple of bucket_size = " +
           std::to_string(d->bucket);
  }
  if (d->length > std::numeric_limits<int32_t>::max()) {
    return std::string(op) + ": L = " + std::to_string(d->length) +
           " is too long for int32 positions";
  }
  d->chunks = d->length / d->bucket;
  const int64_t entries = d->rows * d->rounds * d->length;
  for (int64_t i = 0; i < entries; ++i) {
    if (permutation[i] < 0 || permutation[i] >= d->length) {
      return std::string(op) + ": `permutation` holds " +
             std::to_string(permutation[i]) + " outside [0, L) = [0, " +
             std::to_string(d->length) +
             "); each row of each round must be a permutation of [0, L)";
    }
  }
  return "";
}

#ifndef TF_RESATTN_KERNELS_ONLY
absl::Status CheckChunkDims(const char* op, const int32_t* permutation,
                            ChunkDims* d) {
  const std::string error = ChunkDimsError(op, permutation, d);
  if (error.empty()) return absl::OkStatus();
  return errors::InvalidArgument(error);
}
#endif  // TF_RESATTN_KERNELS_ONLY

int64_t ChunkAttentionScratchFloats(const ChunkDims& d) {
  ForwardScratch scratch;
  return scratch.Layout(d, nullptr);
}

int64_t ChunkAttentionGradScratchFloats(const ChunkDims& d) {
  GradScratch scratch;
  return scratch.Layout(d, nullptr);
}

void ChunkAttentionForward(const CPUDevice& device, const ChunkDims& d,
                           const float* qk, const float* v,
                           const int32_t* permutation, float* scratch,
                           float* out_data, float* lse_data) {
  const int64_t b = d.bucket, depth = d.depth;
  ForwardScratch s;
  s.Layout(d, scratch);
  float *keys_transposed = s.keys_transposed, *values = s.values,
        *inverse_norms = s.inverse_norms;
  ForEachPass(d, permutation, [&](const Pass& pass) {
    auto gather = [&](Eigen::Index begin, Eigen::Index end) {
      Scratch rows(b * depth);
      for (Eigen::Index item = begin; item < end; ++item) {
        PrefetchNext(d, pass, item, begin, end, {qk, v});
        const int64_t row = pass.Row(item);
        const int32_t* tokens = pass.Tokens(item);
        GatherKeys(d, qk, row, tokens, rows.data(),
                   pass.Plane(keys_transposed, item),
                   pass.Values(inverse_norms, item));
        GatherRows(d, v, row, tokens, pass.Plane(values, item));
      }
    };
    device.parallelFor(pass.Items(), GatherCost(d, 3.0), gather);

    auto attend = [&](Eigen::Index begin, Eigen::Index end) {
      Scratch logits(b * 2 * b), outputs(b * depth), key_bias(2 * b),
          tops(b), totals(b), round_lse(b);
      for (Eigen::Index item = begin; item < end; ++item) {
        const int64_t row = pass.Row(item);
        const int32_t* tokens = pass.Tokens(item);
        if (pass.round > 0) {  // the running results, read at the end
          PrefetchChunk(d, pass, item, {out_data});
        }
        ChunkLogits(d, pass, item, keys_transposed, inverse_norms,
                    key_bias.data(), logits.data(), tops.data());
        for (int64_t i = 0; i < b; ++i) {
          totals[i] = row_math::ExpSum(logits.data() + i * 2 * b, tops[i],
                                       2 * b);
          round_lse[i] = tops[i] + std::log(totals[i]);
        }
        const Plain weights{logits.data(), 2 * b};
        const Plain look_back{logits.data() + b, 2 * b};
        SmallGemm(b, depth, b, weights, pass.Plane(values, item), depth,
                  outputs.data(), depth, false);
        SmallGemm(b, depth, b, look_back,
                  pass.Plane(values, pass.Previous(item)), depth,
                  outputs.data(), depth, true);
        // Fold this round into the running output: softmax over rounds
        // of their log-sum-exps. `outputs` are not yet divided by the
        // softmax's totals.
        for (int64_t i = 0; i < b; ++i) {
          const int64_t at = row * d.length + tokens[i];
          float* result = out_data + TokenOffset(d, row, tokens[i]);
          const float* output = outputs.data() + i * depth;
          if (pass.round == 0) {
            row_math::Scaled(1.0f / totals[i], output, result, depth);
            lse_data[at] = round_lse[i];
            continue;
          }
          const float top = std::max(lse_data[at], round_lse[i]);
          const float kept = std::exp(lse_data[at] - top);
          const float added = std::exp(round_lse[i] - top);
          const float total = kept + added;
          row_math::ScaleAdd(kept / total, result,
                             added / (total * totals[i]), output, depth);
          lse_data[at] = top + std::log(total);
        }
      }
    };
    device.parallelFor(pass.Items(), ChunkCost(d, 2.0), attend);
  });
}

// With P_ij = exp(logit_ij - lse_i), query i's weight on key j within the
// softmax over all rounds' keys, and g_i = d_out_i:
//   d logit_ij = P_ij (g_i . v_j - g_i . out_i),   d v_j = sum_i P_ij g_i.
void ChunkAttentionBackward(const CPUDevice& device, const ChunkDims& d,
                            const float* qk, const float* v,
                            const int32_t* permutation, const float* out,
                            const float* lse, const float* d_out,
                            float* scratch, float* d_qk_data,
                            float* d_v_data) {
  const int64_t b = d.bucket, depth = d.depth;
  GradScratch s;
  s.Layout(d, scratch);
  float *keys = s.keys, *keys_transposed = s.keys_transposed,
        *values_transposed = s.values_transposed, *upstream = s.upstream;
  float *inverse_norms = s.inverse_norms, *sorted_lse = s.sorted_lse,
        *sorted_dots = s.sorted_dots, *own = s.own, *back = s.back,
        *dots = s.dots;
  device.parallelFor(
      d.rows * d.length,
      Eigen::TensorOpCost(2.0 * depth * sizeof(float), sizeof(float),
                          2.0 * depth),
      [&](Eigen::Index begin, Eigen::Index end) {
        for (Eigen::Index at = begin; at < end; ++at) {
          const int64_t offset = TokenOffset(d, at / d.length, at % d.length);
          dots[at] = row_math::Dot(d_out + offset, out + offset, depth);
        }
      });
  const float scale = 1.0f / std::sqrt(static_cast<float>(depth));

  ForEachPass(d, permutation, [&](const Pass& pass) {
    auto gather = [&](Eigen::Index begin, Eigen::Index end) {
      Scratch rows(b * depth);
      for (Eigen::Index item = begin; item < end; ++item) {
        PrefetchNext(d, pass, item, begin, end, {qk, v, d_out});
        const int64_t row = pass.Row(item);
        const int32_t* tokens = pass.Tokens(item);
        GatherKeys(d, qk, row, tokens, pass.Plane(keys, item),
                   pass.Plane(keys_transposed, item),
                   pass.Values(inverse_norms, item));
        GatherRows(d, v, row, tokens, rows.data());
        Transpose(b, depth, rows.data(), depth,
                  pass.Plane(values_transposed, item), b);
        GatherRows(d, d_out, row, tokens, pass.Plane(upstream, item));
        for (int64_t i = 0; i < b; ++i) {
          pass.Values(sorted_lse, item)[i] = lse[row * d.length + tokens[i]];
          pass.Values(sorted_dots, item)[i] =
              dots[row * d.length + tokens[i]];
        }
      }
    };
    device.parallelFor(pass.Items(), GatherCost(d, 6.0), gather);

    auto backward = [&](Eigen::Index begin, Eigen::Index end) {
      Scratch weights(b * 2 * b), d_logits(b * 2 * b), queries(b * depth),
          d_queries(b * depth), d_keys(2 * b * depth),
          d_values(2 * b * depth), key_bias(2 * b), tops(b);
      for (Eigen::Index item = begin; item < end; ++item) {
        const int64_t previous = pass.Previous(item);
        ChunkLogits(d, pass, item, keys_transposed, inverse_norms,
                    key_bias.data(), weights.data(), tops.data());
        const float* gradients = pass.Plane(upstream, item);
        const float* query_lse = pass.Values(sorted_lse, item);
        const float* query_dots = pass.Values(sorted_dots, item);
        // d_logits = g_i . v_j for now.
        SmallGemm(b, b, depth, Plain{gradients, depth},
                  pass.Plane(values_transposed, item), b, d_logits.data(),
                  2 * b, false);
        SmallGemm(b, b, depth, Plain{gradients, depth},
                  pass.Plane(values_transposed, previous), b,
                  d_logits.data() + b, 2 * b, false);
        for (int64_t i = 0; i < b; ++i) {
          row_math::SoftmaxGradient(weights.data() + i * 2 * b, query_lse[i],
                                    d_logits.data() + i * 2 * b,
                                    query_dots[i], 2 * b);
        }
        // d query_i (of qk_i D^-1/2) = sum_j d_logit_ij key_j.
        SmallGemm(b, depth, b, Plain{d_logits.data(), 2 * b},
                  pass.Plane(keys, item), depth, d_queries.data(), depth,
                  false);
        SmallGemm(b, depth, b, Plain{d_logits.data() + b, 2 * b},
                  pass.Plane(keys, previous), depth, d_queries.data(), depth,
                  true);
        // d key_j = sum_i d_logit_ij query_i, query_i = query_scale_i key_i.
        const float* norms = pass.Values(inverse_norms, item);
        for (int64_t i = 0; i < b; ++i) {
          row_math::Scaled(scale / norms[i],
                           pass.Plane(keys, item) + i * depth,
                           queries.data() + i * depth, depth);
        }
        SmallGemm(2 * b, depth, b, Transposed{d_logits.data(), 2 * b},
                  queries.data(), depth, d_keys.data(), depth, false);
        SmallGemm(2 * b, depth, b, Transposed{weights.data(), 2 * b},
                  gradients, depth, d_values.data(), depth, false);
        // Each sorted row of `own` and `back` is written by one chunk.
        const bool first_chunk = pass.Chunk(item) == 0;
        for (int64_t j = 0; j < 2 * b; ++j) {
          const bool is_own = j < b;
          const int64_t source = is_own ? item : previous;
          const int64_t i = is_own ? j : j - b;
          float* target = (is_own ? own : back) +
                          (source * b + i) * 2 * depth;
          if (!is_own && first_chunk) {  // the masked look-back
            std::fill_n(target, 2 * depth, 0.0f);
            continue;
          }
          // Through the normalisation key = x r, r = (|x|^2 + eps)^-1/2:
          // d x = r (d key - (key . d key) key).
          const float* key = pass.Plane(keys, source) + i * depth;
          const float* d_key = d_keys.data() + j * depth;
          const float r = pass.Values(inverse_norms, source)[i];
          const float along = row_math::Dot(key, d_key, depth);
          for (int64_t k = 0; k < depth; ++k) {
            target[k] = r * (d_key[k] - along * key[k]);
          }
          if (is_own) {
            const float* d_query = d_queries.data() + j * depth;
            for (int64_t k = 0; k < depth; ++k) target[k] += scale * d_query[k];
          }
          row_math::Copy(d_values.data() + j * depth, target + depth, depth);
        }
      }
    };
    device.parallelFor(pass.Items(), ChunkCost(d, 5.0), backward);

    // Within a round each token has one sorted row: no write conflicts.
    // The first round covers every token of the pass's rows: it writes
    // d_qk and d_v, the later ones add to them.
    const bool accumulate = pass.round > 0;
    auto scatter = [&](Eigen::Index begin, Eigen::Index end) {
      for (Eigen::Index item = begin; item < end; ++item) {
        PrefetchNext(d, pass, item, begin, end, {d_qk_data, d_v_data});
        const int64_t row = pass.Row(item);
        const int32_t* tokens = pass.Tokens(item);
        for (int64_t i = 0; i < b; ++i) {
          const int64_t at = TokenOffset(d, row, tokens[i]);
          const int64_t sorted = (item * b + i) * 2 * depth;
          const float* mine = own + sorted;
          const float* next = back + sorted;
          row_math::AddTwo(mine, next, d_qk_data + at, depth, accumulate);
          row_math::AddTwo(mine + depth, next + depth, d_v_data + at, depth,
                           accumulate);
        }
      }
    };
    device.parallelFor(pass.Items(), GatherCost(d, 6.0), scatter);
  });
}

#ifndef TF_RESATTN_KERNELS_ONLY

namespace {

// Checks qk, v [N, L, D] or [B, L, H, D], permutation [N, R, L] (N = B H),
// valid_length (a scalar) and fills `d`; a permutation entry outside
// [0, L) is refused, since it would address memory outside the tensors.
absl::Status CheckInputs(OpKernelContext* context, const char* op,
                         int64_t bucket, ChunkDims* d) {
  const Tensor& qk = context->input(0);
  const Tensor& v = context->input(1);
  const Tensor& permutation = context->input(2);
  const Tensor& valid_length = context->input(3);
  if (qk.dims() != 3 && qk.dims() != 4) {
    return errors::InvalidArgument(
        op, ": `qk` must be [N, L, D] or [B, L, H, D], got ",
        qk.shape().DebugString());
  }
  if (v.shape() != qk.shape()) {
    return errors::InvalidArgument(op, ": `v` has shape ",
                                   v.shape().DebugString(), " but `qk` has ",
                                   qk.shape().DebugString());
  }
  d->heads = qk.dims() == 4 ? qk.dim_size(2) : 1;
  d->rows = qk.dim_size(0) * d->heads;
  if (permutation.dims() != 3 || permutation.dim_size(0) != d->rows ||
      permutation.dim_size(2) != qk.dim_size(1)) {
    return errors::InvalidArgument(
        op, ": `permutation` must be [N, R, L] with qk's L and N = ", d->rows,
        " rows (qk is ", qk.shape().DebugString(), "), got ",
        permutation.shape().DebugString());
  }
  if (!TensorShapeUtils::IsScalar(valid_length.shape())) {
    return errors::InvalidArgument(op, ": `valid_length` must be a scalar");
  }
  d->length = qk.dim_size(1);
  d->depth = qk.dim_size(qk.dims() - 1);
  d->rounds = permutation.dim_size(1);
  d->bucket = bucket;
  d->valid_length = valid_length.scalar<int32>()();
  return CheckChunkDims(op, permutation.flat<int32>().data(), d);
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

  // Outputs: out [N, L, D], the attention of all rounds combined, and
  // lse [N, L], the log-sum-exp of every query's logits over all rounds.
  void Compute(OpKernelContext* context) override {
    ChunkDims d;
    OP_REQUIRES_OK(context,
                   CheckInputs(context, "lsh_chunk_attention", bucket_, &d));
    Tensor *out = nullptr, *lse = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, context->input(0).shape(), &out));
    OP_REQUIRES_OK(context, context->allocate_output(
                                1, TensorShape({d.rows, d.length}), &lse));
    Tensor scratch;
    OP_REQUIRES_OK(context, context->allocate_temp(
                                DT_FLOAT,
                                TensorShape({ChunkAttentionScratchFloats(d)}),
                                &scratch));
    ChunkAttentionForward(context->eigen_device<CPUDevice>(), d,
                          context->input(0).flat<float>().data(),
                          context->input(1).flat<float>().data(),
                          context->input(2).flat<int32>().data(),
                          scratch.flat<float>().data(),
                          out->flat<float>().data(), lse->flat<float>().data());
  }
};

class LshChunkAttentionGradOp : public ChunkAttentionKernel {
 public:
  using ChunkAttentionKernel::ChunkAttentionKernel;

  // Inputs: qk, v, permutation, valid_length (as the forward op), then the
  // forward's out [N, L, D] and lse [N, L], and the gradient d_out [N, L, D].
  // Outputs: d_qk, d_v [N, L, D].
  void Compute(OpKernelContext* context) override {
    ChunkDims d;
    OP_REQUIRES_OK(context, CheckInputs(context, "lsh_chunk_attention_grad",
                                        bucket_, &d));
    const TensorShape& shape = context->input(0).shape();
    const TensorShape lse_shape({d.rows, d.length});
    const std::pair<int, TensorShape> expected_shapes[] = {
        {4, shape}, {5, lse_shape}, {6, shape}};
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
    Tensor scratch;
    OP_REQUIRES_OK(context,
                   context->allocate_temp(
                       DT_FLOAT, TensorShape({ChunkAttentionGradScratchFloats(d)}),
                       &scratch));
    ChunkAttentionBackward(
        context->eigen_device<CPUDevice>(), d,
        context->input(0).flat<float>().data(),
        context->input(1).flat<float>().data(),
        context->input(2).flat<int32>().data(),
        context->input(4).flat<float>().data(),
        context->input(5).flat<float>().data(),
        context->input(6).flat<float>().data(), scratch.flat<float>().data(),
        d_qk->flat<float>().data(), d_v->flat<float>().data());
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>LshChunkAttention").Device(DEVICE_CPU),
                        LshChunkAttentionOp);
REGISTER_KERNEL_BUILDER(
    Name("TfResattn>LshChunkAttentionGrad").Device(DEVICE_CPU),
    LshChunkAttentionGradOp);

}  // namespace
#endif  // TF_RESATTN_KERNELS_ONLY

}  // namespace tf_resattn
}  // namespace tensorflow
