// Module entry: one ThreadState per environment (the main thread and each worker), the module
// functions of native.d.ts and the port functions (native_port.cpp).
//
// Exception mode: NAPI_CPP_EXCEPTIONS, with NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS so that an
// error raised while an environment is being torn down (a terminating worker cannot throw into
// JS any more) is dropped instead of aborting the process. Errors are rare here by design: the
// hot methods answer with status codes and @iocp/core turns them into typed errors.
#include <napi.h>

#include <cstring>

#include "../port/payload_table.h"
#include "../port/shared_layout.h"
#include "code_cache.h"
#include "debug_hooks.h"
#include "handle_table.h"
#include "io_binding.h"
#include "native_port.h"
#include "thread_state.h"

namespace iocp {

namespace {

// init(scratch, threadId, onAsync): returns this thread's consumer block (shared_layout.h).
Napi::Value init(const Napi::CallbackInfo& info) {
  ThreadState& state = threadState(info.Env());
  state.init(info.Env(), info[0].As<Napi::Uint32Array>(),
             static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()), info[2].As<Napi::Function>());
  return sharedBlockToJs(info.Env(), state.consumer->block());
}

void setScratch(const Napi::CallbackInfo& info) {
  threadState(info.Env()).setScratch(info[0].As<Napi::Uint32Array>());
}

// A payload handed to JS: copied into the data scratch (answering its length; index.js slices
// it out in JS, which is far cheaper than a C++-made ArrayBuffer) when it is small, else as a
// Uint8Array; undefined when there is none. Takes ownership of `payload`.
napi_value payloadResult(napi_env env, ThreadState& state, Payload* payload) {
  napi_value result;
  if (payload == nullptr) {
    napi_get_undefined(env, &result);
  } else if (payload->length < kScratchPayloadMax && payload->length <= state.dataScratchLength) {
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

ThreadState& rawState(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  void* data = nullptr;
  napi_get_cb_info(env, info, argc, argv, nullptr, &data);
  return *static_cast<ThreadState*>(data);
}

// takeData(i): the payload of packet i of this thread's last native get.
napi_value takeData(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  ThreadState& state = rawState(env, info, &argc, argv);
  uint32_t index = 0;
  napi_get_value_uint32(env, argv[0], &index);
  return payloadResult(env, state, state.takePayload(index));
}

// takePayload(lo, hi): the payload whose PayloadTable token a JS get read from the ring. A token
// that is not live (forged, or taken already) answers undefined.
napi_value takePayload(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  ThreadState& state = rawState(env, info, &argc, argv);
  uint32_t lo = 0, hi = 0;
  napi_get_value_uint32(env, argv[0], &lo);
  napi_get_value_uint32(env, argv[1], &hi);
  return payloadResult(env, state, PayloadTable::instance().take(uint64_t(hi) << 32 | lo));
}

// takeAsyncData(): inside the async callback, the payload of the packet being delivered.
napi_value takeAsyncData(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ThreadState& state = rawState(env, info, &argc, nullptr);
  return payloadResult(env, state, state.takeAsyncPayload());
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
  const bool trackHeld = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  // The deleter tells the handle table that an entry can be swept (a port dropped unclosed).
  std::shared_ptr<Port> port(new Port(concurrency, capacity, spinNs, trackHeld), [](Port* gone) {
    delete gone;
    HandleTable::instance().portDied();
  });
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

// The one description of the shared memory and the status codes (shared_layout.h,
// thread_state.h), which @iocp/core checks against its own constants at load.
Napi::Object layout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const std::pair<const char*, uint32_t> words[] = {
      {"kTailLock", kTailLock}, {"kHeadLock", kHeadLock}, {"kState", kState}, {"kRunning", kRunning}, {"kConcurrency", kConcurrency},
      {"kWaiting", kWaiting}, {"kAsyncWaiting", kAsyncWaiting}, {"kPositionMask", kPositionMask},
      {"kRingMask", kRingMask}, {"kRingGen", kRingGen}, {"kCapacity", kCapacity},
      {"kPostedLo", kPostedLo}, {"kPostedHi", kPostedHi}, {"kDequeuedLo", kDequeuedLo},
      {"kDequeuedHi", kDequeuedHi}, {"kPayloadsQueued", kPayloadsQueued}, {"kTrackHeld", kTrackHeld}, {"kToken", kToken},
      {"kControlWords", kControlWords}, {"kKeyLo", kKeyLo}, {"kKeyHi", kKeyHi},
      {"kOverlappedLo", kOverlappedLo}, {"kOverlappedHi", kOverlappedHi}, {"kBytes", kBytes},
      {"kFlags", kFlags}, {"kPayloadLo", kPayloadLo}, {"kPayloadHi", kPayloadHi},
      {"kSlotWords", kSlotWords}, {"kAssociated", kAssociated}, {"kConsumerRunning", kConsumerRunning},
      {"kHeldInBlock", kHeldInBlock}, {"kLockPort", kLockPort}, {"kLockMark", kLockMark}, {"kHeldSlot", kHeldSlot}, {"kConsumerWords", kConsumerWords},
      {"STATUS_CLOSED", static_cast<uint32_t>(-STATUS_CLOSED)}, {"STATUS_FULL", static_cast<uint32_t>(-STATUS_FULL)},
      {"STATUS_TERMINATING", static_cast<uint32_t>(-STATUS_TERMINATING)},
  };
  for (const auto& word : words) o.Set(word.first, Napi::Number::New(env, word.second));
  return o;
}

Napi::Object initModule(Napi::Env env, Napi::Object exports) {
  ThreadState* state = new ThreadState(env);
  env.SetInstanceData<ThreadState>(state);
  exports.Set("init", Napi::Function::New<init>(env, "init"));
  exports.Set("setScratch", Napi::Function::New<setScratch>(env, "setScratch"));
  const std::pair<const char*, napi_callback> raw[] = {
      {"takeData", takeData}, {"takePayload", takePayload}, {"takeAsyncData", takeAsyncData}};
  for (const auto& entry : raw) {
    napi_value fn;
    NAPI_THROW_IF_FAILED(env, napi_create_function(env, entry.first, NAPI_AUTO_LENGTH, entry.second, state, &fn),
                         exports);
    exports.Set(entry.first, Napi::Value(env, fn));
  }
  defineDebugHooks(env, exports);
  exports.Set("LAYOUT", layout(env));
  exports.Set("setDataScratch", Napi::Function::New<setDataScratch>(env, "setDataScratch"));
  exports.Set("createPort", Napi::Function::New<createPort>(env, "createPort"));
  exports.Set("openPort", Napi::Function::New<openPort>(env, "openPort"));
  exports.Set("closeAllPorts", Napi::Function::New<closeAllPorts>(env, "closeAllPorts"));
  definePortFunctions(env, exports, state);
  defineIoFunctions(env, exports);
  defineCodeCacheFunctions(env, exports);
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
