// Locking: one mutex guards the bytes; the first cache left is kept (every thread of a process
// compiles the same bundle with the same V8, so any of them serves), later ones are ignored.
#include "code_cache.h"

#include <cstdint>
#include <mutex>
#include <vector>

namespace iocp {

namespace {

std::mutex gMutex;
std::vector<uint8_t>* gBytes = nullptr;  // never freed: threads may read it until the process ends

// setCodeCache(bytes): keeps a copy of `bytes` if no cache is kept yet; true if it was kept.
Napi::Value setCodeCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError error = Napi::TypeError::New(env, "setCodeCache: bytes must be a Uint8Array");
    error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    throw error;
  }
  const Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  std::lock_guard<std::mutex> lock(gMutex);
  if (gBytes != nullptr || bytes.ByteLength() == 0) return Napi::Boolean::New(env, false);
  gBytes = new std::vector<uint8_t>(bytes.Data(), bytes.Data() + bytes.ByteLength());
  return Napi::Boolean::New(env, true);
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
}

}  // namespace iocp
