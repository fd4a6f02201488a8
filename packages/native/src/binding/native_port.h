// The port as the addon hands it to JS: an External over a heap NativePort (one per wrapper,
// each holding a std::shared_ptr to the shared engine Port). index.js wraps it in a small JS
// class whose methods call the module functions defined here with the External first.
//
// Why an External and module functions rather than Napi::ObjectWrap: unwrapping an ObjectWrap
// is a private-property lookup on every call, and callgrind showed it costing more than the
// engine's post and get together. An External is read with one type check, and the functions
// get this thread's ThreadState as their `data`, so the hot path does no lookups at all.
//
// Every argument is positional and already validated by @iocp/core; answers are status codes
// (see ../../native.d.ts) so that @iocp/core owns every error message.
#pragma once

#include <napi.h>

#include <memory>

#include "../port/port.h"

namespace iocp {

struct ThreadState;

struct NativePort {
  std::shared_ptr<Port> port;  // never empty
  uint64_t id = 0;
};

// An External owning a new NativePort for `port`; freed when the External is collected.
Napi::Value wrapPort(Napi::Env env, std::shared_ptr<Port> port, uint64_t id);

// An ArrayBuffer over `block` that keeps it alive until collected, or undefined where the runtime
// forbids external memory.
Napi::Value sharedBlockToJs(Napi::Env env, const std::shared_ptr<SharedBlock>& block);

// The engine port behind a port External (tag checked; throws a TypeError otherwise).
std::shared_ptr<Port> unwrapPort(Napi::Env env, Napi::Value value);

// Adds the port functions (portPost, portGet, ...) to `exports`, bound to `state`.
void definePortFunctions(Napi::Env env, Napi::Object exports, ThreadState* state);

}  // namespace iocp
