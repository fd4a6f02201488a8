// The completion port engine: Windows' I/O completion port semantics in portable C++17.
// No N-API in here (the binding in ../binding is the only place that knows about Node).
//
// The model, in IOCP's words (CreateIoCompletionPort, PostQueuedCompletionStatus,
// GetQueuedCompletionStatus(Ex)):
//   - packets are dequeued FIFO;
//   - waiting threads are released LIFO: the most recent waiter is the warm one;
//   - at most `concurrency` threads run at once. A thread released with a packet counts as
//     running until it calls get on that port again, and then takes the next queued packet itself,
//     without sleeping, if the rule allows;
//   - a running thread that blocks on something else (blockingEnter) lets the port release
//     another; when it comes back it counts again and may exceed the limit for a while;
//   - a thread is associated with one port at a time: a get on another port moves it;
//   - closing wakes every waiter.
//
// Threads are represented by a Consumer, one per OS thread that calls get (the binding keeps one
// per Node environment). Async waiters (a promise-style get on an event loop) are Waiters whose
// wake callback schedules the delivery instead of signalling a sleeping thread.
//
// Locking: every Port has exactly one mutex, `mutex_`, and every field of the Port, every Waiter
// linked into its stack and every Consumer's `running_` flag while the consumer is associated
// with it are guarded by it. The one atomic is Waiter::released, a hint a spinning waiter polls
// before it takes the mutex (see there); every decision is made under the mutex. Each critical
// section is a handful of loads and stores, and an uncontended std::mutex costs two atomic
// read-modify-writes. A thread never holds two port mutexes at once. Wake callbacks and abandon
// checks run with the port mutex held and must not call back into any Port.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "packet.h"
#include "ring.h"

namespace iocp {

class Port;
class Consumer;

enum class Status : int {
  Ok = 0,
  Timeout = 1,  // get: nothing arrived before the deadline
  Closed = 2,   // the port is closed, or shut down (post) / shut down and drained (get)
  Full = 3,     // post: the queue is at its capacity; nothing was posted
  Abandoned = 4,  // get: the consumer's abandon check said its thread is going away
};

struct GetResult {
  Status status;
  size_t count;          // packets written to `out` when status == Ok (>= 1)
  bool slept = false;    // the thread waited (was woken) rather than taking a queued packet
};

struct PortStats {
  uint64_t queued;
  uint64_t running;
  uint64_t waiting;
  uint64_t posted;
  uint64_t dequeued;
  uint64_t concurrency;
  uint64_t capacity;
  int state;  // 0 open, 1 shut down, 2 closed
};

enum class WaitState : uint8_t {
  Idle,       // not linked into any port
  Waiting,    // linked into a port's waiter stack
  Delivered,  // released with the packet in `slot`
  Closed,     // woken because the port closed (or drained after shutdown)
};

// One blocked or pending get. A blocking get uses the waiter embedded in its Consumer; async
// gets use waiters the binding owns. While state == Waiting, every field is guarded by the
// mutex of the port it waits on.
struct Waiter {
  Waiter* below = nullptr;  // older waiter (toward the bottom of the stack)
  Waiter* above = nullptr;  // newer waiter (toward the top)
  Consumer* consumer = nullptr;
  bool async = false;
  WaitState state = WaitState::Idle;
  Packet slot;
  // Called with the port mutex held, just after `state` became Delivered or Closed. Must not
  // block and must not call into any Port.
  void (*wake)(Waiter*) = nullptr;
  void* context = nullptr;  // the binding's
  // (A) Set with memory_order_release by the releasing thread, under the port mutex, after it
  // wrote `state` and `slot`; a blocking waiter that spins before it parks polls it with
  // memory_order_acquire (load A, in Port::get). It only ends the spin early: the waiter then
  // takes the mutex before it reads anything, so correctness rests on the mutex alone.
  std::atomic<bool> released{false};

  // Back to a fresh, unlinked waiter (Waiter is not copyable because of `released`).
  void reset() {
    below = above = nullptr;
    consumer = nullptr;
    async = false;
    state = WaitState::Idle;
    slot = Packet{};
    wake = nullptr;
    context = nullptr;
    released.store(false, std::memory_order_relaxed);
  }
};

// The per-thread side of the model. Every member is confined to the owning thread except
// `running_` and `waiter_`, which a releasing thread writes under the mutex of the port the
// consumer is waiting on (the consumer is in that port's get at that moment, and reads them
// under the same mutex when it wakes; `waiter_.released` is the one field it polls without it).
class Consumer {
 public:
  explicit Consumer(uint64_t threadId) : threadId_(threadId) {
    waiter_.consumer = this;
    waiter_.context = &wakeup_;
    // Runs with the port mutex held; the sleeping thread re-checks its state under that mutex.
    waiter_.wake = [](Waiter* self) {
      static_cast<std::condition_variable*>(self->context)->notify_one();
    };
  }
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  uint64_t threadId() const noexcept { return threadId_; }
  // The port this thread is associated with (the last one it called get on), if any.
  Port* associatedPort() const noexcept { return port_.get(); }
  // The packets this thread holds: delivered by its last get and not yet followed by another.
  const std::vector<HeldPacket>& held() const noexcept { return held_; }

  // A check a parked get runs every kAbandonPollMs (with the port mutex held; it must not call
  // into any Port): true means the thread is going away (its environment is being torn down),
  // and get returns Abandoned instead of sleeping on. Without it, only a packet, the deadline or
  // close() can end a parked get.
  void setAbandonCheck(bool (*check)(void*), void* context) noexcept {
    abandoned_ = check;
    abandonContext_ = context;
  }
  static constexpr int kAbandonPollMs = 100;

 private:
  friend class Port;

  const uint64_t threadId_;
  std::shared_ptr<Port> port_;   // association; kept alive while associated
  bool running_ = false;         // counts as running on port_ (guarded by port_->mutex_)
  // Ports this thread has called getAsync on since its last move, so that a get or getAsync
  // elsewhere can end the async deliveries counted there (one port at a time).
  std::vector<std::weak_ptr<Port>> asyncPorts_;
  Port* blockedOn_ = nullptr;    // the port of the outermost blockingEnter, if any
  unsigned blockDepth_ = 0;      // nesting of blockingEnter on blockedOn_
  bool resumeRunning_ = false;   // counted (blocking get) when the outermost blockingEnter began
  uint32_t resumeAsync_ = 0;     // async deliveries it counted for, then
  bool (*abandoned_)(void*) = nullptr;
  void* abandonContext_ = nullptr;
  std::vector<HeldPacket> held_;  // capacity reused: no allocation in steady state
  Waiter waiter_;                 // the blocking get's waiter
  std::condition_variable wakeup_;
};

class Port : public std::enable_shared_from_this<Port> {
 public:
  // concurrency >= 1; capacity 0 = unbounded. spinNs: how long a blocking get polls its own
  // waiter before it parks on its condition variable (0 = park at once; ignored on one CPU).
  // Spinning keeps the waiter in the LIFO stack, so the releaser still chooses whom to wake; it
  // only saves the futex sleep and wake when a packet comes within that time. Must be owned by a
  // std::shared_ptr (get associates threads with the port through shared_from_this).
  Port(uint32_t concurrency, size_t capacity, uint32_t spinNs = kDefaultSpinNs);
  static constexpr uint32_t kDefaultSpinNs = 20000;
  ~Port();  // frees the payloads of packets nobody dequeued
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  // PostQueuedCompletionStatus. Never blocks; thread-safe. Hands the packet straight to the most
  // recent waiter when the concurrency rule lets one run, else queues it (allocates only when the
  // queue outgrows its peak depth; std::bad_alloc if it cannot, with nothing posted). Ok: the
  // port owns the packet (and its payload). Closed / Full: nothing was posted and the caller
  // still owns the payload.
  Status post(const Packet& packet);

  // Posts packets[0..count) in order under one lock acquisition, with post's rules for each.
  // Never blocks. Returns how many were posted: all of them (Ok), or, when the queue reached its
  // capacity (or could not grow: out of memory), the first `posted` (Full; the caller still owns
  // the rest and their payloads), or none because the port is not open (Closed). Never throws.
  struct PostManyResult {
    Status status;
    size_t posted;
  };
  PostManyResult postMany(const Packet* packets, size_t count);

  // GetQueuedCompletionStatusEx for thread `consumer` (which must be the calling thread's).
  // Blocks until at least one packet can be taken under the concurrency rule, the deadline
  // passes, or the port closes. timeoutMs: < 0 = infinite, 0 = poll (never sleeps), > 0 =
  // milliseconds, measured from one deadline however often the thread wakes. Writes up to `max`
  // (>= 1) packets to `out`; the caller takes ownership of their payloads. The call first ends
  // the thread's previous delivery (it stops counting as running and holding). Never allocates
  // once the thread's held record has reached its peak batch size.
  GetResult get(Consumer& consumer, Packet* out, size_t max, int64_t timeoutMs);

  // An async get for `consumer` (the calling thread's). The waiter joins the same LIFO stack as
  // blocking waiters. Returns Closed (waiter untouched) if the port is closed or drained after
  // shutdown; otherwise Ok, and waiter->wake will run exactly once (possibly before this returns)
  // unless cancelAsync withdraws the waiter first. A delivery counts the consumer as running on
  // this port until its next get or getAsync here; a consumer that already counts may receive
  // further async deliveries without counting twice, so a thread never deadlocks on itself.
  Status getAsync(Consumer& consumer, Waiter& waiter);

  // Withdraws a pending async waiter. true: it was waiting and is now Idle; false: it was already
  // delivered or closed (its wake has run or is running).
  bool cancelAsync(Waiter& waiter);

  // Gives packets back to the head of the queue, in order, from a thread that received them but
  // cannot use them (it is being terminated, or the async waiter was aborted). The thread stops
  // counting as running for that delivery. Returns false if the port is closed: the caller keeps
  // the packets (and frees their payloads).
  bool requeue(Consumer& consumer, const Packet* packets, size_t count, bool fromAsync);

  // The calling thread stops counting as running while it blocks on something else; the port
  // may release another waiter meanwhile. Nestable. blockingLeave makes it count again (possibly
  // over the limit, as on Windows) if it counted when the outermost blockingEnter began.
  void blockingEnter(Consumer& consumer);
  void blockingLeave(Consumer& consumer);

  // Closes the port for every thread: every waiter wakes with Closed, every later call returns
  // Closed, and the queued packets are handed to the caller (with their payloads). Idempotent:
  // a second close returns nothing.
  std::vector<Packet> close();

  // No new posts; waiters keep draining the queue, and once it is empty they and every later get
  // receive Closed. Closed if the port is already closed.
  Status shutdown();

  PortStats stats() const;


  // The thread of `consumer` is going away: it stops counting as running, its async deliveries
  // stop counting, and the packets it held here are kept as an orphan record for recoverHeld.
  // The binding must have withdrawn its async waiters first.
  void forget(Consumer& consumer);

  // The packets a thread that has gone away held on this port, removed from the record.
  std::vector<HeldPacket> recoverHeld(uint64_t threadId);

 private:
  enum class State : int { Open = 0, ShutDown = 1, Closed = 2 };

  struct AsyncRunning {
    Consumer* consumer;
    uint32_t deliveries;
  };
  struct Orphan {
    uint64_t threadId;
    std::vector<HeldPacket> packets;
  };

  // --- everything below requires mutex_ to be held ---
  void pushWaiterLocked(Waiter& waiter);
  void unlinkWaiterLocked(Waiter& waiter);
  Waiter* findEligibleLocked();
  void deliverLocked(Waiter& waiter, const Packet& packet);
  void dispatchLocked();
  void closeWaitersLocked();
  void stopRunningLocked(Consumer& consumer);
  bool dropAsyncRunningLocked(Consumer& consumer, bool oneDelivery);
  AsyncRunning* findAsyncRunningLocked(const Consumer* consumer);
  size_t takeLocked(Packet* out, size_t max);
  bool drainedLocked() const { return state_ == State::ShutDown && queue_.empty(); }
  // Makes this the consumer's port (a get or getAsync here): it stops counting on the port it
  // was on and on every port it had async deliveries from. Returns the previous association,
  // for the caller to drop once it holds no mutex. Locks other ports' mutexes, not this one's.
  std::shared_ptr<Port> associate(Consumer& consumer);
  void dissociate(Consumer& consumer);  // locks mutex_ itself
  void dropAsync(Consumer& consumer);   // locks mutex_ itself
  static void endBlocking(Consumer& consumer);

  mutable std::mutex mutex_;
  PacketRing queue_;
  Waiter* top_ = nullptr;  // most recent waiter; released first
  uint64_t waiting_ = 0;
  const uint32_t concurrency_;
  const size_t capacity_;
  const uint32_t spinNs_;
  uint32_t running_ = 0;
  State state_ = State::Open;
  uint64_t posted_ = 0;
  uint64_t dequeued_ = 0;
  std::vector<AsyncRunning> asyncRunning_;  // consumers counted through async deliveries
  std::vector<Orphan> orphans_;
};

}  // namespace iocp
