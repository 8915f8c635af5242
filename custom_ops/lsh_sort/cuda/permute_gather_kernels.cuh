// CUDA kernel of TfResattn>PermuteGather, free of TensorFlow.
//
// y[row, i, :] = x[row, permutation[row, i], :], one thread per element;
// permutation entries outside [0, length) give zero rows. Compiled into the
// op library (cc/kernels/permute_gather_op_gpu.cu.cc), by harness.cu, and by
// NVRTC from CuPy (run_cupy.py; the host launcher is hidden by
// __CUDACC_RTC__).

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_PERMUTE_GATHER_KERNELS_CUH_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_PERMUTE_GATHER_KERNELS_CUH_

// Grid-stride over rows * length * depth elements; T is a storage type of
// the element's width (float, or unsigned short for float16/bfloat16).
template <typename T>
__global__ void lsh_permute_gather(const T* x, const int* permutation,
                                   long long rows, long long length,
                                   long long depth, T* y) {
  const long long total = rows * length * depth;
  for (long long index = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       index < total; index += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long vector = index / depth;
    const long long element = index - vector * depth;
    const int source = permutation[vector];
    if (source < 0 || source >= length) {
      y[index] = T(0);
    } else {
      const long long row_start = vector - vector % length;
      y[index] = x[(row_start + source) * depth + element];
    }
  }
}

#ifndef __CUDACC_RTC__
#include <cuda_runtime.h>

// Gathers rows * length vectors of `depth` elements. Asynchronous on `stream`.
template <typename T>
cudaError_t lsh_permute_gather_launch(cudaStream_t stream, const T* x,
                                      const int* permutation, long long rows,
                                      long long length, long long depth,
                                      T* y) {
  const long long total = rows * length * depth;
  if (total == 0) return cudaSuccess;
  const int block = 256;
  long long grid = (total + block - 1) / block;
  if (grid > 65535LL * 32) grid = 65535LL * 32;
  lsh_permute_gather<T><<<static_cast<unsigned>(grid), block, 0, stream>>>(
      x, permutation, rows, length, depth, y);
  return cudaGetLastError();
}
#endif  // __CUDACC_RTC__

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_PERMUTE_GATHER_KERNELS_CUH_
