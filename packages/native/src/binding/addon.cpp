// Module entry: one ThreadState per environment (the main thread and each worker), the module
// functions of native.d.ts and the port functions (native_port.cpp).
//
// Exception mode: NAPI_CPP_EXCEPTIONS, with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS so that an
// error raised while an environment is being torn down (a terminating worker cannot throw into
// JS any more) is dropped instead of aborting the process. Errors are rare here by design: the
// hot methods answer with status codes and @iocp/core turns them into typed errors.
#include <napi.h>

#include <cstring>

#include "handle_table.h"
#include "io_binding.h"
#include "native_port.h"
#include "thread_state.h"

namespace iocp {

namespace {

void init(const Napi::CallbackInfo& info) {
  threadState(info.Env()).init(info.Env(), info[0].As<Napi::Uint32Array>(),
                               static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()),
                               info[2].As<Napi::Function>());
}

void setScratch(const Napi::CallbackInfo& info) {
  threadState(info.Env()).setScratch(info[0].As<Napi::Uint32Array>());
}

// The payload of packet i of this thread's last get: copied into the data scratch (answering its
// length; index.js slices it out in JS, which is far cheaper than a C++-made ArrayBuffer) when
// it is small, else handed over zero-copy as a Uint8Array.
napi_value takeData(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
  ThreadState& state = *static_cast<ThreadState*>(data);
  uint32_t index = 0;
  napi_get_value_uint32(env, argv[0], &index);
  Payload* payload = state.takePayload(index);
  napi_value result;
  if (payload == nullptr) {
    napi_get_undefined(env, &result);
  } else if (payload->length < kZeroCopyFrom && payload->length <= state.dataScratchLength) {
    if (payload->length != 0) std::memcpy(state.dataScratch, payload->bytes(), payload->length);
    napi_create_uint32(env, static_cast<uint32_t>(payload->length), &result);
    Payload::destroy(payload);
  } else {
    try {
      result = payloadToJs(Napi::Env(env), payload);
    } catch (const Napi::Error& error) {  // a raw callback must not let a C++ exception out
      error.ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  return result;
}

void setDataScratch(const Napi::CallbackInfo& info) {
  threadState(info.Env()).setDataScratch(info[0].As<Napi::Uint8Array>());
}

bool requireInit(const Napi::CallbackInfo& info) {
  if (threadState(info.Env()).consumer) return true;
  Napi::Error::New(info.Env(), "@iocp/native: init() must be called first").ThrowAsJavaScriptException();
  return false;
}

Napi::Value createPort(const Napi::CallbackInfo& info) {
  if (!requireInit(info)) return Napi::Value();
  const uint32_t concurrency = info[0].As<Napi::Number>().Uint32Value();
  const size_t capacity = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  const uint32_t spinNs = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : Port::kDefaultSpinNs;
  auto port = std::make_shared<Port>(concurrency, capacity, spinNs);
  const uint64_t id = HandleTable::instance().add(port);
  return wrapPort(info.Env(), std::move(port), id);
}

Napi::Value openPort(const Napi::CallbackInfo& info) {
  if (!requireInit(info)) return Napi::Value();
  const uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  const uint64_t pin = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  std::shared_ptr<Port> port = HandleTable::instance().open(id, pin);
  if (!port) return Napi::Number::New(info.Env(), STATUS_CLOSED);
  return wrapPort(info.Env(), std::move(port), id);
}

// The main thread's exit hook. Node joins worker threads before any native cleanup hook runs,
// so a worker asleep in get() would hang process.exit(): closing every port wakes them all.
void closeAllPorts(const Napi::CallbackInfo&) {
  for (const std::shared_ptr<Port>& port : HandleTable::instance().live()) {
    for (Packet& packet : port->close()) Payload::destroy(packet.data);
  }
}

Napi::Object initModule(Napi::Env env, Napi::Object exports) {
  ThreadState* state = new ThreadState(env);
  env.SetInstanceData<ThreadState>(state);
  exports.Set("init", Napi::Function::New<init>(env, "init"));
  exports.Set("setScratch", Napi::Function::New<setScratch>(env, "setScratch"));
  napi_value takeDataFn;
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, "takeData", NAPI_AUTO_LENGTH, takeData, state, &takeDataFn),
                       exports);
  exports.Set("takeData", Napi::Value(env, takeDataFn));
  exports.Set("setDataScratch", Napi::Function::New<setDataScratch>(env, "setDataScratch"));
  exports.Set("createPort", Napi::Function::New<createPort>(env, "createPort"));
  exports.Set("openPort", Napi::Function::New<openPort>(env, "openPort"));
  exports.Set("closeAllPorts", Napi::Function::New<closeAllPorts>(env, "closeAllPorts"));
  definePortFunctions(env, exports, state);
  defineIoFunctions(env, exports);
  exports.Set("PACKET_WORDS", Napi::Number::New(env, PACKET_WORDS));
  exports.Set("FLAG_KEY_BIGINT", Napi::Number::New(env, FLAG_KEY_BIGINT));
  exports.Set("FLAG_OVERLAPPED_BIGINT", Napi::Number::New(env, FLAG_OVERLAPPED_BIGINT));
  exports.Set("FLAG_HAS_DATA", Napi::Number::New(env, FLAG_HAS_DATA));
  return exports;
}

}  // namespace

}  // namespace iocp

static Napi::Object InitIocp(Napi::Env env, Napi::Object exports) {
  return iocp::initModule(env, exports);
}

NODE_API_MODULE(iocp, InitIocp)
