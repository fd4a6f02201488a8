// A V8 code cache of @iocp/core's bundle, kept once per process for the threads that load the
// bundle after the main thread (see packages/core/src/loader.cts): the main thread leaves its
// cache here when it starts a pool, and each new worker compiles the bundle with it instead of
// from scratch, on its way to its first task. The first pool worker that has run a task then
// leaves its own, which also holds the functions a worker runs (the main thread's holds only
// what the main thread had compiled): it replaces the main thread's, once.
#pragma once

#include <napi.h>

namespace iocp {

// setCodeCache(bytes: Uint8Array, fromWorker: boolean): boolean, codeCache(): Buffer | undefined
// and codeCacheFromWorker(): boolean.
void defineCodeCacheFunctions(Napi::Env env, Napi::Object exports);

}  // namespace iocp
