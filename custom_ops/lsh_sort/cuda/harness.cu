// Standalone check of bucket_sort_kernels.cuh and permute_gather_kernels.cuh on a GPU, without TensorFlow.
//
//   nvcc -O3 -std=c++17 -arch=sm_80 custom_ops/lsh_sort/cuda/harness.cu -o lsh_harness
//   ./lsh_harness
//
// Runs the bucket sort and the permute gather on edge cases and real sizes,
// compares them with a CPU stable counting sort and a CPU gather, and prints
// the median kernel times. Exits 1 on the first mismatch.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "bucket_sort_kernels.cuh"
#include "permute_gather_kernels.cuh"

#define CHECK_CUDA(call)                                                  \
  do {                                                                    \
    cudaError_t status_ = (call);                                         \
    if (status_ != cudaSuccess) {                                         \
      std::fprintf(stderr, "CUDA error %s at %s:%d\n",                    \
                   cudaGetErrorString(status_), __FILE__, __LINE__);      \
      std::exit(2);                                                       \
    }                                                                     \
  } while (0)

namespace {

constexpr int kWarps = 8;

struct Case {
  const char* name;
  long long rows, length, depth;
  int num_buckets;
  int distinct;  // ids drawn from [0, distinct); 0 means "own bucket each"
};

void ReferenceSort(const std::vector<int>& ids, long long rows,
                   long long length, int num_buckets, std::vector<int>* perm,
                   std::vector<int>* inv) {
  std::vector<int> counts(num_buckets);
  for (long long r = 0; r < rows; ++r) {
    const int* row = ids.data() + r * length;
    std::fill(counts.begin(), counts.end(), 0);
    for (long long i = 0; i < length; ++i) ++counts[row[i]];
    int start = 0;
    for (int b = 0; b < num_buckets; ++b) {
      const int c = counts[b];
      counts[b] = start;
      start += c;
    }
    for (long long i = 0; i < length; ++i) {
      const int position = counts[row[i]]++;
      (*perm)[r * length + position] = static_cast<int>(i);
      (*inv)[r * length + i] = position;
    }
  }
}

template <typename T>
T* Upload(const std::vector<T>& host) {
  T* device = nullptr;
  CHECK_CUDA(cudaMalloc(&device, sizeof(T) * std::max<size_t>(host.size(), 1)));
  CHECK_CUDA(cudaMemcpy(device, host.data(), sizeof(T) * host.size(),
                        cudaMemcpyHostToDevice));
  return device;
}

template <typename T>
std::vector<T> Download(const T* device, size_t size) {
  std::vector<T> host(size);
  CHECK_CUDA(cudaMemcpy(host.data(), device, sizeof(T) * size,
                        cudaMemcpyDeviceToHost));
  return host;
}

template <typename Launch>
float MedianMilliseconds(Launch launch, int repeats) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> times;
  launch();  // warm-up
  for (int i = 0; i < repeats; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    launch();
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return times[times.size() / 2];
}

bool RunCase(const Case& c, std::mt19937* rng) {
  const long long n = c.rows * c.length;
  std::vector<int> ids(n);
  for (long long r = 0; r < c.rows; ++r) {
    for (long long i = 0; i < c.length; ++i) {
      ids[r * c.length + i] =
          c.distinct == 0 ? static_cast<int>((c.length - 1 - i) % c.num_buckets)
                          : static_cast<int>((*rng)() % c.distinct);
    }
  }
  std::vector<int> want_perm(n), want_inv(n);
  ReferenceSort(ids, c.rows, c.length, c.num_buckets, &want_perm, &want_inv);

  std::vector<float> x(n * c.depth);
  for (auto& v : x) v = static_cast<float>((*rng)() % 100000) / 7.0f;
  std::vector<float> want_y(n * c.depth);
  for (long long v = 0; v < n; ++v) {
    const long long source = (v / c.length) * c.length + want_perm[v];
    std::copy(x.begin() + source * c.depth, x.begin() + (source + 1) * c.depth,
              want_y.begin() + v * c.depth);
  }
  std::vector<unsigned short> x16(x.size());
  for (size_t i = 0; i < x.size(); ++i) x16[i] = static_cast<unsigned short>(i * 2654435761u >> 16);

  int* d_ids = Upload(ids);
  int* d_perm = Upload(std::vector<int>(n));
  int* d_inv = Upload(std::vector<int>(n));
  int* d_counts = Upload(std::vector<int>(c.rows * kWarps * c.num_buckets));
  float* d_x = Upload(x);
  float* d_y = Upload(std::vector<float>(x.size()));
  unsigned short* d_x16 = Upload(x16);
  unsigned short* d_y16 = Upload(std::vector<unsigned short>(x.size()));

  auto sort = [&] {
    CHECK_CUDA(lsh_bucket_sort_launch(0, d_ids, c.rows, c.length, c.num_buckets,
                                      kWarps, d_counts, d_perm, d_inv));
  };
  auto gather = [&] {
    CHECK_CUDA(lsh_permute_gather_launch<float>(0, d_x, d_perm, c.rows,
                                                c.length, c.depth, d_y));
  };
  sort();
  gather();
  CHECK_CUDA(lsh_permute_gather_launch<unsigned short>(
      0, d_x16, d_perm, c.rows, c.length, c.depth, d_y16));
  CHECK_CUDA(cudaDeviceSynchronize());

  bool ok = Download(d_perm, n) == want_perm && Download(d_inv, n) == want_inv &&
            Download(d_y, x.size()) == want_y;
  const std::vector<unsigned short> y16 = Download(d_y16, x.size());
  for (long long v = 0; ok && v < n; ++v) {
    const long long source = (v / c.length) * c.length + want_perm[v];
    ok = std::equal(y16.begin() + v * c.depth, y16.begin() + (v + 1) * c.depth,
                    x16.begin() + source * c.depth);
  }
  float sort_ms = 0, gather_ms = 0;
  if (ok && n > 0) {
    sort_ms = MedianMilliseconds(sort, 21);
    gather_ms = MedianMilliseconds(gather, 21);
  }
  std::printf("%-28s rows=%-4lld L=%-7lld D=%-3lld buckets=%-6d %s  sort %.3f ms  gather f32 %.3f ms\n",
              c.name, c.rows, c.length, c.depth, c.num_buckets,
              ok ? "OK      " : "MISMATCH", sort_ms, gather_ms);
  for (void* p : {(void*)d_ids, (void*)d_perm, (void*)d_inv, (void*)d_counts,
                  (void*)d_x, (void*)d_y, (void*)d_x16, (void*)d_y16}) {
    CHECK_CUDA(cudaFree(p));
  }
  return ok;
}

}  // namespace

int main() {
  const Case cases[] = {
      {"many ties", 4, 1000, 8, 5, 3},
      {"one bucket", 3, 777, 4, 1, 1},
      {"own bucket each", 2, 513, 4, 513, 0},
      {"L = 1", 5, 1, 3, 2, 2},
      {"odd L", 7, 12345, 16, 97, 97},
      {"N = 0", 0, 64, 8, 4, 4},
      {"more buckets than tokens", 2, 100, 8, 5000, 5000},
      {"real 4 x 16384", 4, 16384, 64, 257, 257},
      {"real 4 x 65536", 4, 65536, 64, 1025, 1025},
      {"layer-like 64 x 4096", 64, 4096, 32, 65, 65},
      // The sizes of the model's full-resolution attention, with the bucket
      // patterns that stress the sort (REAL_CASES of run_cupy.py).
      {"many ties 4 x 16384", 4, 16384, 64, 257, 3},
      {"one bucket 4 x 16384", 4, 16384, 64, 1, 1},
      {"own bucket each 4 x 16384", 4, 16384, 64, 16384, 0},
      {"many ties 4 x 65536", 4, 65536, 64, 1025, 3},
      {"one bucket 4 x 65536", 4, 65536, 64, 1, 1},
      {"own bucket each 4 x 65536", 4, 65536, 64, 65536, 0},
  };
  std::mt19937 rng(0);
  bool all = true;
  for (const Case& c : cases) all = RunCase(c, &rng) && all;
  std::printf(all ? "all cases match the CPU reference\n" : "MISMATCHES found\n");
  return all ? 0 : 1;
}
