// Locking: one mutex guards the bytes and where they came from. The first cache left is kept
// (every thread of a process compiles the same bundle with the same V8, so any of them fits),
// except that the first one a worker leaves replaces the main thread's; later ones are ignored.
// A replaced cache is never freed: another thread may be compiling with a copy of it, and it is
// one per process.
#include "code_cache.h"

#include <cstdint>
#include <mutex>
#include <vector>

namespace iocp {

namespace {

std::mutex gMutex;
std::vector<uint8_t>* gBytes = nullptr;  // never freed: threads may read it until the process ends
bool gFromWorker = false;                 // gBytes came from a pool worker

// setCodeCache(bytes, fromWorker): keeps a copy of `bytes` if no cache is kept yet, or if these
// come from a worker and the kept one does not; true if it was kept.
Napi::Value setCodeCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError error = Napi::TypeError::New(env, "setCodeCache: bytes must be a Uint8Array");
    error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw error;
  }
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    Napi::TypeError error = Napi::TypeError::New(env, "setCodeCache: fromWorker must be a boolean");
    error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw error;
  }
  const Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  const bool fromWorker = info[1].As<Napi::Boolean>().Value();
  std::lock_guard<std::mutex> lock(gMutex);
  if (bytes.ByteLength() == 0 || (gBytes != nullptr && (gFromWorker || !fromWorker))) {
    return Napi::Boolean::New(env, false);
  }
  gBytes = new std::vector<uint8_t>(bytes.Data(), bytes.Data() + bytes.ByteLength());
  gFromWorker = fromWorker;
  return Napi::Boolean::New(env, true);
}

// codeCacheFromWorker(): whether the kept cache came from a pool worker.
Napi::Value codeCacheFromWorker(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(gMutex);
  return Napi::Boolean::New(info.Env(), gFromWorker);
}

// codeCache(): a copy of the kept cache, or undefined.
Napi::Value codeCache(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (gBytes == nullptr) return info.Env().Undefined();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), gBytes->data(), gBytes->size());
}

}  // namespace

void defineCodeCacheFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("setCodeCache", Napi::Function::New<setCodeCache>(env, "setCodeCache"));
  exports.Set("codeCache", Napi::Function::New<codeCache>(env, "codeCache"));
  exports.Set("codeCacheFromWorker", Napi::Function::New<codeCacheFromWorker>(env, "codeCacheFromWorker"));
}

}  // namespace iocp
