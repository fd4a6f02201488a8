// The process's overlapped I/O: the two backends (created on first use), the choice between
// them, and the association of file descriptors with ports (IOCP's
// CreateIoCompletionPort(FileHandle, ExistingPort, CompletionKey)). Plain C++, no N-API.
//
// An association keeps a private duplicate of the caller's descriptor (dup), and every operation
// runs on the duplicate: a caller that closes its fd while I/O is in flight cannot make a pool
// thread read from a closed descriptor, or from whatever file reuses the number. The duplicate is
// closed by dissociate(), by closePort(), or when the port is gone.
//
// Locking: `mutex_` guards `ports_` and the backend slots. It is never held while calling into a
// backend's drain (which blocks) or into a Port. A duplicate that closes while it is held (an
// association erased with no operation in flight) clears its registered-file slot in every ring:
// the order is mutex_, then FileSlots' mutex, then a ring's submit lock (file_slots.h).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backend.h"

namespace iocp {
namespace io {

enum class Preference : int { Auto = 0, ThreadPool = 1, IoUring = 2 };

// Answers of associate/lookup; @iocp/core turns them into errors that name the argument.
enum class IoStatus : int {
  Ok = 0,
  BadFd = 1,           // the fd is not open
  NotFile = 2,         // not a regular file or block device
  AlreadyAssociated = 3,
  NotAssociated = 4,
  Unavailable = 5,     // the forced backend cannot run here
  Capacity = 6,        // the port has a capacity: a completion could be refused
  SystemError = 7,     // dup() failed (errno in `error`)
};

// A private duplicate of a caller's descriptor, closed when the last holder (the association,
// or an operation still running on it) lets go. It holds a registered-file slot (file_slots.h)
// while it is open, or none (-1); closing it clears the slot in every ring first.
struct DupFd {
  int fd;
  int slot = -1;
  uint64_t slotId = 0;
  explicit DupFd(int duplicate);
  ~DupFd();
  DupFd(const DupFd&) = delete;
  DupFd& operator=(const DupFd&) = delete;
};

struct Target {
  std::shared_ptr<DupFd> dup;  // the duplicate to run on (put it in Op::fdHolder)
  int fd;  // dup->fd (its slot: dup->slot, dup->slotId)
  uint64_t key;
  uint32_t keyFlags;
  Backend* backend;
};

class IoService {
 public:
  // threadPoolThreads: the pool backend's threads; ringEntries: the io_uring SQ size.
  IoService(unsigned threadPoolThreads, unsigned ringEntries, Preference processDefault);
  ~IoService();  // drains and destroys the backends, closes every duplicate
  IoService(const IoService&) = delete;
  IoService& operator=(const IoService&) = delete;

  // Sets the backend preference of `port` (before its first association). Ok, or Unavailable
  // (a forced io_uring the kernel refuses; `why` says why), or AlreadyAssociated (too late).
  IoStatus configure(const std::shared_ptr<Port>& port, Preference preference, const char** why);

  // Ties `fd` to `port` with `key` (keyFlags: the binding's bigint flag for the key). The port's
  // backend is chosen here on its first association. `error` receives errno for SystemError.
  IoStatus associate(const std::shared_ptr<Port>& port, int fd, uint64_t key, uint32_t keyFlags,
                     const char** why, int* error);

  // Ends the association: cancels its operations, waits for them, closes the duplicate.
  IoStatus dissociate(const Port* port, int fd);

  // Where an operation on (port, fd) runs. BadFd when the caller's fd is closed (even if the
  // association remains), NotAssociated when there is none, or when the number now names
  // another file than the one associated (closed and reused: the old file is never read).
  // Thread-safe.
  IoStatus lookup(const Port* port, int fd, Target* target);

  // Cancels and waits for every operation on `port`, then forgets its associations. For close().
  void closePort(const Port* port);

  // Cancels and waits for every operation issued by `owner` (a thread going away).
  void drainOwner(const void* owner);

  // The backend serving `port`: null until its first association.
  Backend* backendOf(const Port* port);

  // A backend by kind, created on first use; null when it cannot run here (`why` says why).
  Backend* backend(BackendKind kind, const char** why);

  // The backend Auto picks: io_uring when it sets up, else the thread pool.
  Backend* automatic(const char** why);

  // Every backend created so far (for stats and test hooks).
  std::vector<Backend*> backends();

 private:
  struct Association {
    std::shared_ptr<DupFd> dup;
    uint64_t key;
    uint32_t keyFlags;
    uint64_t dev, ino;  // the file associated, to tell it from a file that reused the number
  };
  struct PortIo {
    std::weak_ptr<Port> port;
    Preference preference = Preference::Auto;
    Backend* backend = nullptr;
    std::unordered_map<int, Association> files;
  };

  // Forgets ports that no longer exist, closing their duplicates. mutex_ is held.
  void sweepLocked();
  PortIo* findLocked(const Port* port);
  Backend* backendLocked(BackendKind kind, const char** why);

  const unsigned threads_;
  const unsigned ringEntries_;
  const Preference processDefault_;
  std::mutex mutex_;
  std::unordered_map<const Port*, PortIo> ports_;
  std::unique_ptr<Backend> pool_;
  std::unique_ptr<Backend> ring_;
  bool ringTried_ = false;
  const char* ringWhy_ = nullptr;
};

}  // namespace io
}  // namespace iocp
