// A V8 code cache of @iocp/core's bundle, kept once per process for the threads that load the
// bundle after the main thread (see packages/core/src/loader.cts): the main thread leaves its
// cache here when it starts a pool, and each new worker compiles the bundle with it instead of
// from scratch, on its way to its first task.
#pragma once

#include <napi.h>

namespace iocp {

// setCodeCache(bytes: Uint8Array): boolean, and codeCache(): Buffer | undefined.
void defineCodeCacheFunctions(Napi::Env env, Napi::Object exports);

}  // namespace iocp
