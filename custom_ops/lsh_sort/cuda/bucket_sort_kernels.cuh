// CUDA kernels of TfResattn>BucketSort, free of TensorFlow.
//
// The same source is compiled three ways: into the op library (through
// cc/kernels/bucket_sort_op_gpu.cu.cc), by the standalone nvcc harness
// (harness.cu), and by NVRTC from CuPy (run_cupy.py, which sees only the
// __global__ kernels: the host launcher is hidden from NVRTC by
// __CUDACC_RTC__).
//
// Stable by position, one thread block of `warps` warps per row; warp w owns
// the contiguous segment [w * segment, (w + 1) * segment) of the row, so
// (bucket, warp, position) order is (bucket, position) order:
//   1. lsh_bucket_histogram: counts[row, w, b] = tokens of bucket b in
//      segment w (global atomics on per-warp counters).
//   2. lsh_bucket_offsets: counts[row, w, b] becomes the first output
//      position of segment w's tokens of bucket b (scan over w inside each
//      bucket, then an exclusive block scan over buckets).
//   3. lsh_bucket_scatter: each warp walks its segment 32 tokens at a time;
//      lanes with the same bucket find each other with __match_any_sync and
//      rank themselves by lane, so positions stay stable without atomics.
// Bucket ids outside [0, num_buckets) are clamped into range.
//
// Needs compute capability 7.0 or newer (__match_any_sync).

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_BUCKET_SORT_KERNELS_CUH_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_BUCKET_SORT_KERNELS_CUH_

#define LSH_FULL_WARP_MASK 0xffffffffu

__device__ __forceinline__ int lsh_clamp_bucket(int id, int num_buckets) {
  return id < 0 ? 0 : (id >= num_buckets ? num_buckets - 1 : id);
}

// The segment [begin, end) of a row that the calling thread's warp owns.
struct LshWarpSegment {
  int warp, lane;
  long long begin, end;
};

__device__ __forceinline__ LshWarpSegment lsh_warp_segment(long long length) {
  const int warps = blockDim.x / 32;
  const long long segment = (length + warps - 1) / warps;
  LshWarpSegment s;
  s.warp = threadIdx.x / 32;
  s.lane = threadIdx.x % 32;
  s.begin = s.warp * segment;
  s.end = s.begin + segment < length ? s.begin + segment : length;
  return s;
}

// Grid: one block per row. counts: [rows, warps, num_buckets], zeroed.
extern "C" __global__ void lsh_bucket_histogram(const int* buckets,
                                                long long length,
                                                int num_buckets, int* counts) {
  const long long row = blockIdx.x;
  const LshWarpSegment s = lsh_warp_segment(length);
  const int* ids = buckets + row * length;
  int* warp_counts = counts + (row * (blockDim.x / 32) + s.warp) * num_buckets;
  for (long long i = s.begin + s.lane; i < s.end; i += 32) {
    atomicAdd(&warp_counts[lsh_clamp_bucket(ids[i], num_buckets)], 1);
  }
}

// Grid: one block per row, `warps` is the block size of the other two
// kernels divided by 32. Dynamic shared memory: blockDim.x ints.
extern "C" __global__ void lsh_bucket_offsets(int* counts, int warps,
                                              int num_buckets) {
  extern __shared__ int lsh_scan[];
  const long long row = blockIdx.x;
  int* row_counts = counts + row * warps * num_buckets;
  int carry = 0;
  for (int chunk = 0; chunk < num_buckets; chunk += blockDim.x) {
    const int bucket = chunk + threadIdx.x;
    int total = 0;
    if (bucket < num_buckets) {
      for (int w = 0; w < warps; ++w) {
        const int count = row_counts[w * num_buckets + bucket];
        row_counts[w * num_buckets + bucket] = total;
        total += count;
      }
    }
    // Inclusive Hillis-Steele scan of the chunk's bucket totals.
    lsh_scan[threadIdx.x] = total;
    __syncthreads();
    for (int stride = 1; stride < blockDim.x; stride *= 2) {
      const int add = threadIdx.x >= stride ? lsh_scan[threadIdx.x - stride] : 0;
      __syncthreads();
      lsh_scan[threadIdx.x] += add;
      __syncthreads();
    }
    const int start = carry + lsh_scan[threadIdx.x] - total;
    if (bucket < num_buckets) {
      for (int w = 0; w < warps; ++w) row_counts[w * num_buckets + bucket] += start;
    }
    carry += lsh_scan[blockDim.x - 1];
    __syncthreads();
  }
}

// Grid: one block per row, same block size as lsh_bucket_histogram.
extern "C" __global__ void lsh_bucket_scatter(const int* buckets,
                                              long long length,
                                              int num_buckets, int* offsets,
                                              int* permutation, int* inverse) {
  const long long row = blockIdx.x;
  const LshWarpSegment s = lsh_warp_segment(length);
  const int* ids = buckets + row * length;
  int* warp_offsets = offsets + (row * (blockDim.x / 32) + s.warp) * num_buckets;
  int* row_permutation = permutation + row * length;
  int* row_inverse = inverse + row * length;
  const unsigned lanes_below = (1u << s.lane) - 1u;
  for (long long chunk = s.begin; chunk < s.end; chunk += 32) {
    const long long i = chunk + s.lane;
    const bool active = i < s.end;
    const int bucket = active ? lsh_clamp_bucket(ids[i], num_buckets) : -1;
    const unsigned peers = __match_any_sync(LSH_FULL_WARP_MASK, bucket);
    int base = 0;
    if (active) base = warp_offsets[bucket];
    __syncwarp();
    if (active) {
      const int position = base + __popc(peers & lanes_below);
      if (s.lane == __ffs(peers) - 1) warp_offsets[bucket] = base + __popc(peers);
      row_permutation[position] = static_cast<int>(i);
      row_inverse[i] = position;
    }
    __syncwarp();
  }
}

#ifndef __CUDACC_RTC__
#include <cuda_runtime.h>

// Block size of the bucket-sort kernels for `warps` warps per row.
inline int lsh_bucket_sort_block(int warps) { return warps * 32; }

// Sorts `rows` rows of `length` ids. `counts` holds rows * warps *
// num_buckets ints of scratch. Asynchronous on `stream`.
inline cudaError_t lsh_bucket_sort_launch(cudaStream_t stream,
                                          const int* buckets, long long rows,
                                          long long length, int num_buckets,
                                          int warps, int* counts,
                                          int* permutation, int* inverse) {
  if (rows == 0 || length == 0) return cudaSuccess;
  const int block = lsh_bucket_sort_block(warps);
  cudaError_t status = cudaMemsetAsync(
      counts, 0, sizeof(int) * rows * warps * num_buckets, stream);
  if (status != cudaSuccess) return status;
  lsh_bucket_histogram<<<rows, block, 0, stream>>>(buckets, length,
                                                   num_buckets, counts);
  lsh_bucket_offsets<<<rows, block, block * sizeof(int), stream>>>(
      counts, warps, num_buckets);
  lsh_bucket_scatter<<<rows, block, 0, stream>>>(
      buckets, length, num_buckets, counts, permutation, inverse);
  return cudaGetLastError();
}
#endif  // __CUDACC_RTC__

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CUDA_BUCKET_SORT_KERNELS_CUH_
