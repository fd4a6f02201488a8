// NativePort: the JS wrapper of one std::shared_ptr<Port> in one environment. Internal to
// @iocp/core, which validates every argument first: methods take positional, already-checked
// values and answer with status codes (see ../../native.d.ts), so that @iocp/core owns every
// error message and the hot path never builds an exception.
#pragma once

#include <napi.h>

#include <memory>

#include "../port/port.h"

namespace iocp {

class NativePort : public Napi::ObjectWrap<NativePort> {
 public:
  static Napi::Function define(Napi::Env env);
  // A wrapper around `port` (registered under `id`).
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<Port> port, uint64_t id);

  explicit NativePort(const Napi::CallbackInfo& info);

 private:
  Napi::Value post(const Napi::CallbackInfo& info);
  Napi::Value postEx(const Napi::CallbackInfo& info);
  Napi::Value get(const Napi::CallbackInfo& info);
  Napi::Value getMany(const Napi::CallbackInfo& info);
  Napi::Value getManyInto(const Napi::CallbackInfo& info);
  Napi::Value getAsync(const Napi::CallbackInfo& info);
  Napi::Value cancelAsync(const Napi::CallbackInfo& info);
  Napi::Value blockingEnter(const Napi::CallbackInfo& info);
  Napi::Value blockingLeave(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value shutdown(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value handle(const Napi::CallbackInfo& info);
  Napi::Value recoverHeld(const Napi::CallbackInfo& info);
  Napi::Value release(const Napi::CallbackInfo& info);

  // The shared receive path of get/getMany/getManyInto: returns the count or a status.
  int32_t receive(napi_env env, uint32_t* out, size_t max, int64_t timeoutMs);

  std::shared_ptr<Port> port_;  // empty after release()
  uint64_t id_ = 0;
};

}  // namespace iocp
