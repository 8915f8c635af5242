// Row operations of the chunk attention, each one pass over its floats in
// Eigen's widest packets (8 floats with AVX, 16 with AVX-512, 4 with SSE).
//
// The kernels work on rows of a few dozen to a few hundred floats (a
// token's D values, a query's 2b logits): Eigen's array expressions on maps
// of unknown length and alignment spend much of such a row on masked heads
// and tails, and take a reduction and an assignment in two passes. Every
// reduction here splits its row the same way on every call (packet lanes,
// then the lanes in order, then the tail), so that results are reproducible
// whatever the buffers' alignment.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_ROW_MATH_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_ROW_MATH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "Eigen/Core"

namespace tensorflow {
namespace tf_resattn {
namespace row_math {

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kWidth = Eigen::internal::unpacket_traits<Packet>::size;

inline Packet Load(const float* x) { return Eigen::internal::ploadu<Packet>(x); }
inline void Store(float* x, const Packet& p) { Eigen::internal::pstoreu(x, p); }
inline Packet Broadcast(float value) {
  return Eigen::internal::pset1<Packet>(value);
}

// x . y over n floats.
inline float Dot(const float* x, const float* y, int64_t n) {
  using namespace Eigen::internal;
  Packet sums = pset1<Packet>(0.0f);
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) sums = pmadd(Load(x + k), Load(y + k), sums);
  float sum = predux(sums);
  for (; k < n; ++k) sum += x[k] * y[k];
  return sum;
}

// y = x over n floats (a loop the compiler keeps inline: a library call
// per row of a few dozen floats costs more than the copy).
inline void Copy(const float* x, float* y, int64_t n) {
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) Store(y + k, Load(x + k));
  for (; k < n; ++k) y[k] = x[k];
}

// y = a * y + c * x over n floats.
inline void ScaleAdd(float a, float* y, float c, const float* x, int64_t n) {
  using namespace Eigen::internal;
  const Packet pa = Broadcast(a), pc = Broadcast(c);
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    Store(y + k, pmadd(pa, Load(y + k), pmul(pc, Load(x + k))));
  }
  for (; k < n; ++k) y[k] = a * y[k] + c * x[k];
}

// y = c * x over n floats.
inline void Scaled(float c, const float* x, float* y, int64_t n) {
  using namespace Eigen::internal;
  const Packet pc = Broadcast(c);
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) Store(y + k, pmul(pc, Load(x + k)));
  for (; k < n; ++k) y[k] = c * x[k];
}

// y = x + z (+ y when `accumulate`) over n floats.
inline void AddTwo(const float* x, const float* z, float* y, int64_t n,
                   bool accumulate) {
  using namespace Eigen::internal;
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const Packet sum = padd(Load(x + k), Load(z + k));
    Store(y + k, accumulate ? padd(Load(y + k), sum) : sum);
  }
  for (; k < n; ++k) y[k] = (accumulate ? y[k] : 0.0f) + (x[k] + z[k]);
}

// row = row * scale + bias over n floats; returns the new row's maximum.
inline float ScaleBiasMax(float* row, float scale, const float* bias,
                          int64_t n) {
  using namespace Eigen::internal;
  const Packet ps = Broadcast(scale);
  Packet tops = Broadcast(-std::numeric_limits<float>::infinity());
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const Packet value = pmadd(Load(row + k), ps, Load(bias + k));
    Store(row + k, value);
    tops = pmax(tops, value);
  }
  float top = predux_max(tops);
  for (; k < n; ++k) {
    row[k] = row[k] * scale + bias[k];
    top = std::max(top, row[k]);
  }
  return top;
}

// row = exp(row - shift) over n floats; returns the new row's sum.
inline float ExpSum(float* row, float shift, int64_t n) {
  using namespace Eigen::internal;
  const Packet ps = Broadcast(shift);
  Packet sums = pset1<Packet>(0.0f);
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const Packet value = pexp(psub(Load(row + k), ps));
    Store(row + k, value);
    sums = padd(sums, value);
  }
  float sum = predux(sums);
  for (; k < n; ++k) {
    row[k] = std::exp(row[k] - shift);
    sum += row[k];
  }
  return sum;
}

// weights = exp(weights - shift); gradients = weights * (gradients - dot),
// over n floats.
inline void SoftmaxGradient(float* weights, float shift, float* gradients,
                            float dot, int64_t n) {
  using namespace Eigen::internal;
  const Packet ps = Broadcast(shift), pd = Broadcast(dot);
  int64_t k = 0;
  for (; k + kWidth <= n; k += kWidth) {
    const Packet weight = pexp(psub(Load(weights + k), ps));
    Store(weights + k, weight);
    Store(gradients + k, pmul(weight, psub(Load(gradients + k), pd)));
  }
  for (; k < n; ++k) {
    weights[k] = std::exp(weights[k] - shift);
    gradients[k] = weights[k] * (gradients[k] - dot);
  }
}

}  // namespace row_math
}  // namespace tf_resattn
}  // namespace tensorflow

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_KERNELS_ROW_MATH_H_
