// TfResattn>LibraryInfo: the facts the Python loader checks before use.

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"

namespace tensorflow {
namespace tf_resattn {

// The build script passes the version of the TensorFlow whose headers it
// compiles against (the pip headers do not define TF_MAJOR_VERSION).
#ifndef TF_RESATTN_TF_VERSION
#error "TF_RESATTN_TF_VERSION is not defined (build with custom_ops/build.py)"
#endif

#if defined(__AVX2__) && defined(__FMA__)
constexpr int kAvx2Fma = 1;
#else
constexpr int kAvx2Fma = 0;
#endif

#if GOOGLE_CUDA
constexpr int kWithCuda = 1;
#else
constexpr int kWithCuda = 0;
#endif  // GOOGLE_CUDA

// Defined by cc/xla/host_targets.cc where the library was built with its XLA
// custom-call targets (see custom_ops/build.py); weak, so null without them.
extern "C" const char* TfResattnXlaPlatforms() __attribute__((weak));

// Whether the CPU running this process (and its operating system) supports
// AVX2 and FMA, so the loader can refuse an AVX2 build where it would crash.
int RunningCpuHasAvx2Fma() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

class LibraryInfoOp : public OpKernel {
 public:
  explicit LibraryInfoOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    Tensor* info = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({}), &info));
    info->scalar<tstring>()() = absl::StrCat(
        "tf_version=", TF_RESATTN_TF_VERSION,
        ";cxx11_abi=", _GLIBCXX_USE_CXX11_ABI,
        ";cuda=", kWithCuda, ";avx2_fma=", kAvx2Fma,
        ";cpu_avx2_fma=", RunningCpuHasAvx2Fma(), ";xla=",
        TfResattnXlaPlatforms == nullptr ? "" : TfResattnXlaPlatforms());
  }
};

REGISTER_KERNEL_BUILDER(Name("TfResattn>LibraryInfo").Device(DEVICE_CPU),
                        LibraryInfoOp);

}  // namespace tf_resattn
}  // namespace tensorflow
