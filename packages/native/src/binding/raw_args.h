// Argument conversions for the raw Node-API callbacks: the packet path (native_port.cpp) and
// overlapped I/O (io_binding.cpp). @iocp/core has validated every argument before the call, so
// these only read; a read that fails leaves the zero each starts from.
#pragma once

#include <node_api.h>

#include <cstdint>

namespace iocp::raw {

inline napi_value int32(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

inline double doubleOf(napi_env env, napi_value value) {
  double result = 0;
  napi_get_value_double(env, value, &result);
  return result;
}

inline int32_t intOf(napi_env env, napi_value value) {
  int32_t result = 0;
  napi_get_value_int32(env, value, &result);
  return result;
}

inline uint32_t uint32Of(napi_env env, napi_value value) {
  uint32_t result = 0;
  napi_get_value_uint32(env, value, &result);
  return result;
}

// A key or overlapped value, a number or a bigint (all 64 bits of a bigint are kept, and
// `bigintFlag` is set in `flags` so that it goes back to JS as a bigint).
inline uint64_t u64Of(napi_env env, napi_value value, uint32_t bigintFlag, uint32_t& flags) {
  uint64_t result = 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, value, &result, &lossless) == napi_ok) {
    flags |= bigintFlag;
    return result;
  }
  return static_cast<uint64_t>(doubleOf(env, value));
}

}  // namespace iocp::raw
