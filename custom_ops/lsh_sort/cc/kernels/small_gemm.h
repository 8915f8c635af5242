// Small single-threaded float matrix products (and transposes) for the LSH
// kernels.
//
// The chunk attention multiplies matrices of a few dozen to a few hundred
// rows (b x D by D x 2b, ...), thousands of times per call, from many
// threads. General-purpose GEMMs pack their operands and block for caches
// that these already fit in; a register tile of 6 rows x 16 columns
// accumulated with FMA over the shared dimension is faster here (its 12
// accumulators hide the FMA latency; 4 x 16 tiles ran at 3/4 of its speed). Built with
// AVX2 and FMA the tile is written with intrinsics; otherwise the same loops
// are left to the compiler.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_SMALL_GEMM_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_SMALL_GEMM_H_

#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace tensorflow {
namespace tf_resattn {

// A row-major matrix operand: element (i, p) of op(A) is
// `data[i * stride + p]`, or `data[p * stride + i]` when `kTransposed`.
template <bool kTransposed>
struct Operand {
  const float* data;
  int64_t stride;

  float operator()(int64_t i, int64_t p) const {
    return kTransposed ? data[p * stride + i] : data[i * stride + p];
  }
};

namespace small_gemm_internal {

constexpr int64_t kTileRows = 6;
constexpr int64_t kTileColumns = 16;

// c[rows x 16] (+)= a[rows x depth] * b[depth x 16], rows <= kTileRows.
template <int64_t kRows, typename A>
inline void Tile(const A& a, int64_t row, const float* b, int64_t ldb,
                 int64_t depth, float* c, int64_t ldc, bool accumulate) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 sums[kRows][2];
  for (int64_t r = 0; r < kRows; ++r) {
    sums[r][0] = accumulate ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    sums[r][1] =
        accumulate ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < depth; ++p) {
    const __m256 low = _mm256_loadu_ps(b + p * ldb);
    const __m256 high = _mm256_loadu_ps(b + p * ldb + 8);
    for (int64_t r = 0; r < kRows; ++r) {
      const __m256 scalar = _mm256_set1_ps(a(row + r, p));
      sums[r][0] = _mm256_fmadd_ps(scalar, low, sums[r][0]);
      sums[r][1] = _mm256_fmadd_ps(scalar, high, sums[r][1]);
    }
  }
  for (int64_t r = 0; r < kRows; ++r) {
    _mm256_storeu_ps(c + r * ldc, sums[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, sums[r][1]);
  }
#else
  float sums[kRows][kTileColumns];
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t q = 0; q < kTileColumns; ++q) {
      sums[r][q] = accumulate ? c[r * ldc + q] : 0.0f;
    }
  }
  for (int64_t p = 0; p < depth; ++p) {
    for (int64_t r = 0; r < kRows; ++r) {
      const float scalar = a(row + r, p);
      for (int64_t q = 0; q < kTileColumns; ++q) {
        sums[r][q] += scalar * b[p * ldb + q];
      }
    }
  }
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t q = 0; q < kTileColumns; ++q) c[r * ldc + q] = sums[r][q];
  }
#endif
}

// The last `rows` < kTileRows rows of a column tile, as one tile.
template <typename A>
inline void RemainderTile(int64_t rows, const A& a, int64_t row,
                          const float* b, int64_t ldb, int64_t depth,
                          float* c, int64_t ldc, bool accumulate) {
  switch (rows) {
    case 5: return Tile<5, A>(a, row, b, ldb, depth, c, ldc, accumulate);
    case 4: return Tile<4, A>(a, row, b, ldb, depth, c, ldc, accumulate);
    case 3: return Tile<3, A>(a, row, b, ldb, depth, c, ldc, accumulate);
    case 2: return Tile<2, A>(a, row, b, ldb, depth, c, ldc, accumulate);
    case 1: return Tile<1, A>(a, row, b, ldb, depth, c, ldc, accumulate);
    default: return;
  }
}

}  // namespace small_gemm_internal

// c[m x n] = a[m x depth] * b[depth x n] (+ c when `accumulate`);
// `b` and `c` row-major with strides `ldb`, `ldc`.
template <typename A>
inline void SmallGemm(int64_t m, int64_t n, int64_t depth, const A& a,
                      const float* b, int64_t ldb, float* c, int64_t ldc,
                      bool accumulate) {
  using small_gemm_internal::kTileColumns;
  using small_gemm_internal::kTileRows;
  using small_gemm_internal::RemainderTile;
  using small_gemm_internal::Tile;
  const int64_t tiled_columns = n - n % kTileColumns;
  for (int64_t j = 0; j < tiled_columns; j += kTileColumns) {
    int64_t i = 0;
    for (; i + kTileRows <= m; i += kTileRows) {
      Tile<kTileRows, A>(a, i, b + j, ldb, depth, c + i * ldc + j, ldc,
                      accumulate);
    }
    RemainderTile<A>(m - i, a, i, b + j, ldb, depth, c + i * ldc + j, ldc,
                     accumulate);
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = tiled_columns; j < n; ++j) {
      float sum = accumulate ? c[i * ldc + j] : 0.0f;
      for (int64_t p = 0; p < depth; ++p) sum += a(i, p) * b[p * ldb + j];
      c[i * ldc + j] = sum;
    }
  }
}

// dst[cols x rows] = src[rows x cols]^T, both row-major with strides
// `lds`, `ldd`; 8 x 8 blocks in registers where AVX2 is available.
inline void Transpose(int64_t rows, int64_t cols, const float* src,
                      int64_t lds, float* dst, int64_t ldd) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  for (; i + 8 <= rows; i += 8) {
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 r[8], t[8];
      for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + (i + k) * lds + j);
      for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      }
      for (int k = 0; k < 8; k += 4) {
        r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(dst + (j + k) * ldd + i,
                         _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
        _mm256_storeu_ps(dst + (j + k + 4) * ldd + i,
                         _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
      }
    }
    for (; j < cols; ++j) {
      for (int64_t k = 0; k < 8; ++k) dst[j * ldd + i + k] = src[(i + k) * lds + j];
    }
  }
#endif
  for (; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}

}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_SMALL_GEMM_H_
