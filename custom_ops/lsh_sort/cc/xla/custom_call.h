// What every XLA custom-call target of the library shares: reading the
// shapes from the backend config and reporting a failure to XLA.
//
// TensorFlow's `XlaCustomCallV2` op emits custom calls of the
// status-returning API (`API_VERSION_STATUS_RETURNING_UNIFIED`): a target
// gets its operands' and results' buffers and the backend config string,
// not their shapes, so the Python side (tf_resattn/ops/xla_calls.py) writes
// the static dimensions into the config as integers separated by spaces.

#ifndef TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_XLA_CUSTOM_CALL_H_
#define TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_XLA_CUSTOM_CALL_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "xla/service/custom_call_status_internal.h"

namespace tensorflow {
namespace tf_resattn {

// Reads exactly `count` non-negative integers from the backend config into
// `values`; false when it holds anything else.
inline bool ReadConfig(const char* opaque, size_t opaque_len, int count,
                       int64_t* values) {
  const std::string text(opaque, opaque_len);
  const char* at = text.c_str();
  for (int i = 0; i < count; ++i) {
    char* end = nullptr;
    values[i] = std::strtoll(at, &end, 10);
    if (end == at || values[i] < 0) return false;
    at = end;
  }
  while (*at == ' ') ++at;
  return *at == '\0';
}

// The gather's config "N L D element_bytes" (2 or 4 bytes), as ReadConfig.
inline bool ReadGatherConfig(const char* opaque, size_t opaque_len,
                             int64_t* config) {
  return ReadConfig(opaque, opaque_len, 4, config) &&
         (config[3] == 2 || config[3] == 4);
}

// Makes the XLA computation fail with `message` (XLA raises it in Python).
// The wheel exports no XlaCustomCallStatusSetFailure; the status is the
// struct of custom_call_status_internal.h, of the TensorFlow built against.
inline void SetFailure(XlaCustomCallStatus* status, const std::string& message) {
  status->message = message;
}

inline void SetFailure(XlaCustomCallStatus* status, const absl::Status& error) {
  SetFailure(status, std::string(error.message()));
}

}  // namespace tf_resattn
}  // namespace tensorflow

// Which platforms the library registered custom-call targets for ("Host",
// or "Host,CUDA"); LibraryInfo reports it (a weak reference there: null when
// the library was built without its XLA targets).
extern "C" const char* TfResattnXlaPlatforms();

#endif  // TF_RESATTN_CUSTOM_OPS_LSH_SORT_CC_XLA_CUSTOM_CALL_H_
