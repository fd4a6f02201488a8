// The portable backend: `threads` pool threads take operations from one FIFO queue and run them
// with pread/pwrite/fsync. Used where io_uring is unavailable (seccomp, old kernels, other
// platforms) or when forced.
//
// Cancellation (CancelIoEx's rules): an op still in the queue is taken out and completes with
// ECANCELED at once; an op a pool thread is running completes normally (a regular-file pread
// cannot be interrupted, and it ends in bounded time).
//
// Locking: TrackedBackend::mutex_ also guards the queue, `paused_` and `stopping_`. Pool threads
// wait on `work_` only inside a loop that re-checks its condition.
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <thread>
#include <vector>

#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#include "tracked.h"

namespace iocp {
namespace io {

namespace {

long runOp(const Op& op) {
#ifdef _WIN32
  (void)op;
  return -ENOSYS;  // Windows has real IOCP; this library does not route its files here
#else
  for (;;) {
    ssize_t result = 0;
    switch (op.kind) {
      case OpKind::Read: result = ::pread(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset)); break;
      case OpKind::Write: result = ::pwrite(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset)); break;
      case OpKind::Fsync: result = ::fsync(op.fd); break;
    }
    if (result >= 0) return static_cast<long>(result);
    if (errno != EINTR) return -errno;
  }
#endif
}

class ThreadPoolBackend final : public TrackedBackend {
 public:
  explicit ThreadPoolBackend(unsigned threads) {
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
  }

  ~ThreadPoolBackend() override {
    drain(nullptr, nullptr, -1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  BackendKind kind() const noexcept override { return BackendKind::ThreadPool; }
  const char* name() const noexcept override { return "thread-pool"; }

  void submit(Op* const* ops, size_t count) override {
    if (count == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < count; ++i) {
      trackLocked(ops[i]);
      queue_.push_back(ops[i]);
    }
    if (idle_threads_ == 0 || paused_) return;  // signal only when someone waits
    if (count == 1) work_.notify_one(); else work_.notify_all();
  }

  size_t cancel(const Port* port, int userFd, bool matchOverlapped, uint64_t overlapped) override {
    std::vector<Op*> unstarted;
    size_t matched = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (Op* op = head_; op != nullptr; op = op->next) {
        if (op->port.get() != port || op->userFd != userFd) continue;
        if (matchOverlapped && op->packet.overlapped != overlapped) continue;
        if (op->cancelRequested) continue;
        op->cancelRequested = true;
        ++matched;
        if (!op->started) unstarted.push_back(op);
      }
      takeFromQueueLocked(unstarted);
    }
    for (Op* op : unstarted) complete(op, -ECANCELED);
    return matched;
  }

  void drain(const Port* port, const void* owner, int userFd) override {
    std::vector<Op*> unstarted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (Op* op = head_; op != nullptr; op = op->next) {
        if (!matches(op, port, owner, userFd)) continue;
        op->cancelRequested = true;
        if (!op->started) unstarted.push_back(op);
      }
      takeFromQueueLocked(unstarted);
    }
    for (Op* op : unstarted) complete(op, -ECANCELED);
    waitNone(port, owner, userFd);  // the started ones finish on their own, in bounded time
  }

  void setPaused(bool paused) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      paused_ = paused;
    }
    if (!paused) work_.notify_all();
  }

 private:
  // Removes `ops` (unstarted, so all in queue_, and all with cancelRequested set) from the queue.
  // Every queued op with cancelRequested is among them: a cancelled op leaves the queue at once.
  // mutex_ is held.
  void takeFromQueueLocked(const std::vector<Op*>& ops) {
    if (ops.empty()) return;
    std::deque<Op*> kept;
    for (Op* op : queue_) {
      if (!op->cancelRequested) kept.push_back(op);
    }
    queue_.swap(kept);
    for (Op* op : ops) op->started = true;  // taken by the canceller, which completes it
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      while (!stopping_ && (paused_ || queue_.empty())) {
        ++idle_threads_;
        work_.wait(lock);
        --idle_threads_;
      }
      if (stopping_) return;
      Op* op = queue_.front();
      queue_.pop_front();
      op->started = true;
      lock.unlock();
      complete(op, runOp(*op));
      lock.lock();
    }
  }

  std::deque<Op*> queue_;        // submitted, not started (guarded by mutex_)
  bool paused_ = false;          // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  unsigned idle_threads_ = 0;    // pool threads waiting on work_ (guarded by mutex_)
  std::condition_variable work_;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<Backend> makeThreadPoolBackend(unsigned threads) {
  return std::make_unique<ThreadPoolBackend>(threads == 0 ? 1 : threads);
}

}  // namespace io
}  // namespace iocp
