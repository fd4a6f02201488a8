// Overlapped file I/O for the port: the operation record and the backend interface. Plain C++,
// no N-API (the binding in ../binding/io_binding.cpp is the only place that knows about Node).
//
// The model is IOCP's: a file is associated with a port and a completion key; each read, write
// or fsync is issued with an `overlapped` value and returns at once; when it finishes, its
// completion enters the port through the engine's own post path (Port::post) as a packet
// { key, bytes, overlapped }, so the queue, FIFO order, LIFO wake-ups and the concurrency rule
// are the same for I/O packets and posted ones. A failed operation is a packet with
// kFlagIoError set in `flags` and the positive errno in `bytes`.
//
// Lifetime: an Op owns a std::shared_ptr to its port (the port outlives every operation on it)
// and an optional Keeper that keeps the caller's buffer alive until the packet is posted (or
// dropped because the port was closed meanwhile). Every Op completes exactly once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "../port/port.h"

namespace iocp {
namespace io {

// flags bit of a packet whose operation failed; `bytes` then holds the errno. The binding's
// flags use bits 0..2 (key bigint, overlapped bigint, has data).
constexpr uint32_t kFlagIoError = 8;

enum class OpKind : uint8_t { Read = 0, Write = 1, Fsync = 2 };

enum class BackendKind : int { ThreadPool = 0, IoUring = 1 };

// Keeps an operation's buffer alive. release() is called exactly once, on a backend thread (or
// the submitting thread when the op never started), after the completion was posted or dropped.
// It must be thread-safe and must not call into a Backend or a Port.
class Keeper {
 public:
  virtual ~Keeper() = default;
  virtual void release() noexcept = 0;
};

struct Op {
  OpKind kind = OpKind::Read;
  int fd = -1;         // the descriptor the I/O runs on (the association's private duplicate)
  int userFd = -1;     // the descriptor the caller named: what cancel() matches on
  void* buffer = nullptr;
  uint32_t length = 0;
  uint64_t offset = 0;
  std::shared_ptr<Port> port;
  Packet packet;       // key, overlapped and the binding's flags; bytes is filled at completion
  const void* owner = nullptr;  // who issued it (the binding's per-thread state): drain(owner)
  Keeper* keeper = nullptr;     // released once, after the completion; may be null
  // Keeps `fd` open until the op is deleted (the association's duplicate: a dissociate racing
  // with a submission cannot close it under the op, nor let its number be reused meanwhile).
  std::shared_ptr<void> fdHolder;
  // The registered-file slot of `fd` and the id it is registered under (file_slots.h), or -1:
  // io_uring then submits on the slot (IOSQE_FIXED_FILE). fdHolder keeps the slot's file.
  int fileSlot = -1;
  uint64_t fileId = 0;

  // --- the backend's bookkeeping (guarded by the backend's in-flight mutex) ---
  Op* prev = nullptr;
  Op* next = nullptr;
  bool cancelRequested = false;
  bool started = false;  // handed to the kernel or to a pool thread
  void* ring = nullptr;  // io_uring: the ring the op was submitted to (where its cancel goes)
};

struct BackendStats {
  uint64_t submitted;
  uint64_t completed;
  uint64_t failed;     // completed with an error (cancellations included)
  uint64_t cancelled;  // completed with ECANCELED
  uint64_t inFlight;
};

// A backend executes operations and posts their completions. Every method is thread-safe.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const noexcept = 0;
  virtual const char* name() const noexcept = 0;

  // Takes ownership of ops[0..count) (from OpPool::take, or `new Op`). Never blocks beyond a
  // short mutex hold and, for io_uring, one io_uring_enter. Each op completes exactly once: its
  // packet is posted to its port (or dropped if the port is closed by then), its keeper
  // released, and the op given back to the OpPool (op_pool.h).
  virtual void submit(Op* const* ops, size_t count) = 0;

  // CancelIoEx: asks every in-flight op of `port` on `userFd` (and, if `matchOverlapped`, with
  // that overlapped value) to stop. Ops not yet started complete with ECANCELED before this
  // returns; started ones complete with ECANCELED if the kernel could stop them, else normally.
  // Returns how many ops matched. Never blocks on I/O.
  virtual size_t cancel(const Port* port, int userFd, bool matchOverlapped, uint64_t overlapped) = 0;

  // Cancels every op of `port` (any port when null) issued by `owner` (any owner when null) on
  // `userFd` (any fd when -1), and blocks until none of them is in flight: their packets have been
  // posted (or dropped), their keepers released and their duplicate fds let go. Used by close,
  // dissociate and thread teardown.
  virtual void drain(const Port* port, const void* owner, int userFd = -1) = 0;

  // Test hook: while paused, no new op is started (ops wait, cancellable, in the backend's own
  // queue). Lets tests hold operations in flight deterministically.
  virtual void setPaused(bool paused) = 0;

  virtual BackendStats stats() const = 0;
};

// The portable backend: a pool of threads doing pread/pwrite/fsync. `threads` >= 1.
std::unique_ptr<Backend> makeThreadPoolBackend(unsigned threads);

// io_uring through raw system calls. nullptr when the kernel (or a seccomp profile, or the
// io_uring_disabled sysctl) refuses it, or on a platform without it; `why` then says what failed.
std::unique_ptr<Backend> makeIoUringBackend(unsigned entries, const char** why);

}  // namespace io
}  // namespace iocp
