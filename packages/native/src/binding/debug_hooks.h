// Functions for the test suites only (exported as debug*): leak counters, and C++ producer
// threads that post to a port beside JS producers, so that a JS test can stress both halves of
// the shared-memory protocol on one port at once.
#pragma once

#include <napi.h>

namespace iocp {

void defineDebugHooks(Napi::Env env, Napi::Object exports);

}  // namespace iocp
