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
// Shared memory: the queue (a ring of packet slots) and the port's control state live in blocks
// that JS operates on directly (shared_layout.h). @iocp/core posts a packet, and takes one when
// the concurrency rule lets its thread run, in JS, with no call into native code; it calls
// native code to park, to wake a parked thread, for getAsync, and whenever the fast path does
// not apply. C++ producers (this class's post) follow the same rules on the same memory.
//
// Locking: every Port has one lock, `lock_`, made of two futex-style words in the control
// block that JS takes too (shared_lock.h, PortLock): the tail lock, which a JS post takes, and
// the head lock, which a JS get takes. The engine always takes both (tail first), so for the
// engine they are one lock: it guards every word of the control block and the ring, every field
// of the Port below, every Waiter linked into its stack, and the kConsumerRunning word of every
// Consumer associated with it. Under it, C++ reads and writes shared words with relaxed atomics:
// the locks' acquire/release (JS: sequentially consistent Atomics) order them. What JS does
// under one of the two, and why that is safe, is in shared_layout.h and docs/architecture.md
// ("The two locks"). Outside the lock, only these are touched: Waiter::released (load A,
// below), a Consumer's own kAssociated and kHeldInBlock words (by its own thread only), and the
// constants. Each critical section is a handful of loads and stores. A thread never holds the
// locks of two ports at once. Wake callbacks and abandon checks run with the lock held and must
// not call back into any Port.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "packet.h"
#include "shared_block.h"
#include "shared_layout.h"
#include "shared_lock.h"
#include "spin_policy.h"

namespace iocp {

static_assert(SharedLock::kStateMask == kLockStateMask && (0xffffffffu >> 2) == kPositionMask,
              "shared_lock.h and shared_layout.h must agree on the lock words' bits");

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

// Waiter::released values.
constexpr uint32_t kNotReleased = 0;
constexpr uint32_t kReleased = 1;
constexpr uint32_t kParked = 2;  // the waiter sleeps on the word: the releaser must wake it

// One blocked or pending get. A blocking get uses the waiter embedded in its Consumer; async
// gets use waiters the binding owns. While state == Waiting, every field is guarded by the
// lock of the port it waits on.
struct Waiter {
  Waiter* below = nullptr;  // older waiter (toward the bottom of the stack)
  Waiter* above = nullptr;  // newer waiter (toward the top)
  Consumer* consumer = nullptr;
  bool async = false;
  WaitState state = WaitState::Idle;
  Packet slot;
  // Called with the port lock held, just after `state` became Delivered or Closed; `parked`:
  // the waiter was asleep on `released` (a blocking waiter must then be woken). Must not block
  // and must not call into any Port.
  void (*wake)(Waiter*, bool parked) = nullptr;
  void* context = nullptr;  // the binding's
  // (A) kNotReleased while linked. The releasing thread exchanges in kReleased (release order),
  // under the port lock, after it wrote `state` and `slot`. A blocking waiter polls it with
  // acquire loads while it spins, then CASes kNotReleased -> kParked and sleeps on it (park.h);
  // the releaser that sees kParked wakes it. The flag only ends the spin or the sleep: the
  // waiter then takes the lock before it reads anything, so correctness rests on the lock.
  std::atomic<uint32_t> released{kNotReleased};

  // Back to a fresh, unlinked waiter (Waiter is not copyable because of `released`).
  void reset() {
    below = above = nullptr;
    consumer = nullptr;
    async = false;
    state = WaitState::Idle;
    slot = Packet{};
    wake = nullptr;
    context = nullptr;
    released.store(kNotReleased, std::memory_order_relaxed);
  }
};

// The per-thread side of the model. Every member is confined to the owning thread except
// `waiter_` and the kConsumerRunning word of `block_`, which a releasing thread writes under the
// lock of the port the consumer is waiting on (the consumer is in that port's get at that moment,
// and reads them under the same lock when it wakes; `waiter_.released` is the one field it polls
// without it).
class Consumer {
 public:
  // Throws std::bad_alloc.
  explicit Consumer(uint64_t threadId);
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  uint64_t threadId() const noexcept { return threadId_; }
  // The port this thread is associated with (the last one it called get on), if any.
  Port* associatedPort() const noexcept { return port_.get(); }
  // The packets this thread holds on a port that tracks them (Port trackHeld): delivered by its
  // last get and not yet followed by another.
  std::vector<HeldPacket> held() const;
  // The block JS reads and writes for this thread's fast path (shared_layout.h, ConsumerWord).
  const std::shared_ptr<SharedBlock>& block() const noexcept { return block_; }

  // A check a parked get runs every kAbandonPollMs (with the port lock held; it must not call
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

  bool running() const noexcept { return (*block_)[kConsumerRunning].load(std::memory_order_relaxed) != 0; }
  void setRunning(bool value) noexcept { (*block_)[kConsumerRunning].store(value ? 1 : 0, std::memory_order_relaxed); }
  void setAssociated(uint32_t token) noexcept { (*block_)[kAssociated].store(token, std::memory_order_relaxed); }

  const uint64_t threadId_;
  std::shared_ptr<SharedBlock> block_;
  std::shared_ptr<Port> port_;   // association; kept alive while associated
  // Ports this thread has called getAsync on since its last move, so that a get or getAsync
  // elsewhere can end the async deliveries counted there (one port at a time).
  std::vector<std::weak_ptr<Port>> asyncPorts_;
  Port* blockedOn_ = nullptr;    // the port of the outermost blockingEnter, if any
  unsigned blockDepth_ = 0;      // nesting of blockingEnter on blockedOn_
  bool resumeRunning_ = false;   // counted (blocking get) when the outermost blockingEnter began
  uint32_t resumeAsync_ = 0;     // async deliveries it counted for, then
  bool (*abandoned_)(void*) = nullptr;
  void* abandonContext_ = nullptr;
  std::vector<HeldPacket> held_;  // a native get's record (capacity reused); see kHeldInBlock
  Waiter waiter_;                 // the blocking get's waiter
};

class Port : public std::enable_shared_from_this<Port> {
 public:
  // concurrency >= 1; capacity 0 = unbounded. spinNs: how long a blocking get may poll its own
  // waiter before it parks (0 = park at once; ignored on one CPU), as SpinPolicy allows.
  // Spinning keeps the waiter in the LIFO stack, so the releaser still chooses whom to wake; it
  // only saves the sleep and wake when a packet comes within that time. trackHeld: keep, for
  // recoverHeld, the packets that threads held when they went away (a pool asks for it; other
  // ports keep nothing, so the records cannot grow without bound). Must be owned by a
  // std::shared_ptr (get associates threads with the port through shared_from_this). Throws
  // std::bad_alloc.
  Port(uint32_t concurrency, size_t capacity, uint32_t spinNs = kDefaultSpinNs, bool trackHeld = false);
  static constexpr uint32_t kDefaultSpinNs = 20000;
  static constexpr uint32_t kInitialRingSlots = 1024;
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
  // the thread's previous delivery (it stops counting as running and holding). Throws
  // std::bad_alloc only before anything was taken (the held record is reserved first). Owning
  // thread of `consumer` only.
  GetResult get(Consumer& consumer, Packet* out, size_t max, int64_t timeoutMs);

  // An async get for `consumer` (the calling thread's). The waiter joins the same LIFO stack as
  // blocking waiters. Returns Closed (waiter untouched) if the port is closed or drained after
  // shutdown; otherwise Ok, and waiter->wake will run exactly once (possibly before this returns)
  // unless cancelAsync withdraws the waiter first. A delivery counts the consumer as running on
  // this port until its next get or getAsync here; a consumer that already counts may receive
  // further async deliveries without counting twice, so a thread never deadlocks on itself.
  // Throws std::bad_alloc before linking the waiter. Owning thread of `consumer` only.
  Status getAsync(Consumer& consumer, Waiter& waiter);

  // Withdraws a pending async waiter. true: it was waiting and is now Idle; false: it was already
  // delivered or closed (its wake has run or is running). Thread-safe.
  bool cancelAsync(Waiter& waiter);

  // Gives packets back to the head of the queue, in order, from a thread that received them but
  // cannot use them (it is being terminated, or the async waiter was aborted). The thread stops
  // counting as running for that delivery. Ok when requeued; Closed if the port is closed: the caller keeps
  // the packets (and frees their payloads). Never throws. Requeueing needs ring room only when
  // the ring is full; if memory for it cannot be had, the packets become an orphan record of the
  // consumer's thread (recoverHeld returns them; their payloads are freed) and the result is
  // Full, so the caller can say so. Owning thread of `consumer` only.
  Status requeue(Consumer& consumer, const Packet* packets, size_t count, bool fromAsync) noexcept;

  // The calling thread stops counting as running while it blocks on something else; the port
  // may release another waiter meanwhile. Nestable. blockingLeave makes it count again (possibly
  // over the limit, as on Windows) if it counted when the outermost blockingEnter began.
  // Owning thread of `consumer` only.
  void blockingEnter(Consumer& consumer);
  void blockingLeave(Consumer& consumer);

  // Closes the port for every thread: every waiter wakes with Closed, every later call returns
  // Closed, and the queued packets are handed to the caller (with their payloads). Idempotent:
  // a second close returns nothing. Thread-safe.
  std::vector<Packet> close();

  // No new posts; waiters keep draining the queue, and once it is empty they and every later get
  // receive Closed. Closed if the port is already closed. Thread-safe.
  Status shutdown();

  PortStats stats() const;

  // The thread of `consumer` is going away: it stops counting as running, its async deliveries
  // stop counting, and, on a port that tracks held packets, what it held here is kept as an
  // orphan record for recoverHeld. The binding must have withdrawn its async waiters first.
  void forget(Consumer& consumer);

  // The packets a thread that has gone away held on this port, removed from the record (always
  // empty on a port that does not track held packets). Thread-safe.
  std::vector<HeldPacket> recoverHeld(uint64_t threadId);

  // The shared blocks JS works on: the control block (constant for the port's life) and the
  // current ring (replaced when it grows; kRingGen says which one is current). Thread-safe.
  const std::shared_ptr<SharedBlock>& control() const noexcept { return control_; }
  std::shared_ptr<SharedBlock> ring(uint32_t* generation = nullptr) const;
  uint32_t token() const noexcept { return token_; }

  // JS's unlock saw a lock word at 2 (the head lock's if `head`): wake one thread parked on it.
  void wakeLockWaiter(bool head) noexcept { lock_.wakeOne(head); }

  // The thread of `consumer` is going away, perhaps in the middle of a JS call on this port
  // (its block's kLockPort and kLockMark, shared_layout.h): releases the lock JS held, or makes
  // the wake its unlock owed, and clears the mark. A call stopped while it held the lock had not
  // published its writes (the unlock's exchange does), so the queue is as before the call.
  // Call it on the thread itself, before anything that takes this port's locks. Returns whether
  // the mark named this port.
  bool releaseAbandonedLock(Consumer& consumer) noexcept;

 private:
  enum class State : uint32_t { Open = 0, ShutDown = 1, Closed = 2 };

  struct AsyncRunning {
    Consumer* consumer;
    uint32_t deliveries;
  };
  struct Orphan {
    uint64_t threadId;
    std::vector<HeldPacket> packets;
  };

  // --- everything below requires lock_ to be held ---
  uint32_t wordLocked(ControlWord w) const { return (*control_)[w].load(std::memory_order_relaxed); }
  void setWordLocked(ControlWord w, uint32_t v) { (*control_)[w].store(v, std::memory_order_relaxed); }
  void addWordLocked(ControlWord w, uint32_t d) { setWordLocked(w, wordLocked(w) + d); }
  // kPayloadsQueued is the one word JS also changes outside the locks (a JS get takes its
  // payloads off it with Atomics.sub once its unlock has published the get): always an atomic add.
  void addPayloadsQueued(uint32_t d) { (*control_)[kPayloadsQueued].fetch_add(d, std::memory_order_relaxed); }
  void add64Locked(ControlWord lo, ControlWord hi, uint64_t d);
  State stateLocked() const { return static_cast<State>(wordLocked(kState)); }
  uint32_t runningLocked() const { return wordLocked(kRunning); }
  uint32_t headLocked() const { return lock_.head(); }
  uint32_t tailLocked() const { return lock_.tail(); }
  void setHeadLocked(uint32_t position) { lock_.setHead(position & kPositionMask); }
  void setTailLocked(uint32_t position) { lock_.setTail(position & kPositionMask); }
  size_t queuedLocked() const { return (tailLocked() - headLocked()) & kPositionMask; }
  bool queueEmptyLocked() const { return tailLocked() == headLocked(); }
  size_t ringSlotsLocked() const { return size_t(wordLocked(kRingMask)) + 1; }
  // Ring slots: a payload moves into the PayloadTable when its packet enters the ring, and out
  // when it leaves. pushBack/pushFront need a free slot (ensureRoomLocked) and a registered
  // payload token; popFront never allocates.
  void writeSlotLocked(uint32_t position, const Packet& packet, uint64_t payloadToken);
  Packet popFrontLocked();
  // Makes room for `more` packets beyond those queued (grows the ring). std::bad_alloc with
  // nothing changed.
  void ensureRoomLocked(size_t more);
  void pushBackLocked(const Packet& packet);  // throws std::bad_alloc with nothing changed
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
  bool drainedLocked() const { return stateLocked() == State::ShutDown && queueEmptyLocked(); }
  // Makes this the consumer's port (a get or getAsync here): it stops counting on the port it
  // was on and on every port it had async deliveries from. Returns the previous association,
  // for the caller to drop once it holds no lock. Locks other ports' locks, not this one's.
  std::shared_ptr<Port> associate(Consumer& consumer);
  void dissociate(Consumer& consumer);  // locks lock_ itself
  void dropAsync(Consumer& consumer);   // locks lock_ itself
  static void endBlocking(Consumer& consumer);
  // Waits (spinning as spin_ allows, then parked) until `waiter` is released, the deadline
  // passes or the thread is abandoned. Called and returns with lock_ held.
  Status waitLocked(Consumer& consumer, Waiter& waiter, int64_t timeoutMs);

  const std::shared_ptr<SharedBlock> control_;
  mutable PortLock lock_;
  std::shared_ptr<SharedBlock> ring_;  // guarded by lock_ (replaced when it grows)
  Waiter* top_ = nullptr;  // most recent waiter; released first
  const uint32_t concurrency_;
  const size_t capacity_;
  const uint32_t token_;
  const bool trackHeld_;
  SpinPolicy spin_;
  std::vector<AsyncRunning> asyncRunning_;  // consumers counted through async deliveries
  std::vector<Orphan> orphans_;
};

}  // namespace iocp
