// The binding of overlapped file I/O (../io): the module functions io* that @iocp/core's
// port/io.ts calls, registered by addon.cpp with one call. Arguments are positional and already
// validated by @iocp/core; answers are status codes (io::IoStatus) so that @iocp/core owns every
// error message.
#pragma once

#include <napi.h>

namespace iocp {

// Adds the io* functions and constants to `exports`, with this environment's I/O state (the
// buffers it keeps alive, and the cleanup hook that waits for its operations at teardown).
void defineIoFunctions(Napi::Env env, Napi::Object exports);

}  // namespace iocp
