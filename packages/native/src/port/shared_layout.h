// The memory that C++ and JS share: one layout, described once. The binding exports every index
// below to JS at load, and @iocp/core checks its own constants against them (port/layout.ts), so
// the two sides cannot drift apart silently.
//
// Three blocks, each native-owned and reference-counted (SharedBlock), each seen from JS as an
// Int32Array / Uint32Array over an ArrayBuffer that holds a reference to it:
//
//   control  (per port)    ControlWord below: the two lock words, the state, the concurrency counts,
//                          the ring's head and tail, the counters.
//   ring     (per port)    kSlotWords uint32 words per packet slot, a power-of-two number of slots.
//                          Replaced by a larger one when it fills (kRingGen changes); never shrinks.
//   consumer (per thread)  ConsumerWord below: the fast-path association, the running flag and
//                          the one-packet held record that JS writes.
//
// Every word is a std::atomic<uint32_t> on the C++ side and an element of an Int32Array /
// Uint32Array driven with `Atomics` on the JS side. The memory-ordering rules are in port.h
// ("Locking") and docs/architecture.md ("The shared-memory packet path").
#pragma once

#include <cstdint>

namespace iocp {

// Words of the control block, in three cache lines so that a producer and a consumer on two
// threads do not take turns owning one line (docs/architecture.md, "The two locks"):
//   - the producer line: the tail lock and what a post writes;
//   - the consumer line: the head lock and what a get writes;
//   - the shared line: words that change only when a thread starts or stops waiting or running
//     (a get that keeps its place in the count writes none of them), and the constants.
// A JS post takes only the tail lock; a JS get only the head lock. The engine takes both, the
// tail lock first, for every call: it sees and changes everything at once, as with one lock.
enum ControlWord : uint32_t {
  // The producer line.
  // The tail lock and the tail, in one word: bits 0-1 are the lock's state (0 free, 1 held, 2 held
  // and a thread may be parked on it: the futex protocol, shared_lock.h), bits 2-31 the position
  // after the newest packet (30 bits, wrapping; slot = position & mask). One word, so that a JS
  // post publishes its packet and releases the lock with one exchange. The position changes only
  // while the lock is held: by the engine (with both locks) or by a JS post.
  kTailLock = 0,
  kPostedLo = 1,      // packets accepted by post, as two uint32 halves (tail lock)
  kPostedHi = 2,
  // The consumer line.
  // The head lock and the head (the position of the oldest queued packet), in one word, like
  // kTailLock: a JS get frees the slot it read and releases the lock with one exchange.
  // queued = (tail - head) & kPositionMask.
  kHeadLock = 16,
  kDequeuedLo = 17,   // packets handed to consumers (head lock)
  kDequeuedHi = 18,
  kPayloadsQueued = 19,  // queued packets that carry a payload token, or more (only the engine
                         // adds, under both locks, as a JS post never carries one; a JS get
                         // subtracts with an atomic sub after its unlock, so the count is never
                         // below the truth): when 0, a JS batch get skips looking for tokens
  // The shared line.
  kState = 32,        // 0 open, 1 shut down, 2 closed (both locks)
  kRunning = 33,      // threads counted as running (head lock: a JS get changes it)
  kWaiting = 34,      // waiters linked in the LIFO stack, blocking and async (both locks)
  kAsyncWaiting = 35, // of which async: they may be released while kRunning >= kConcurrency
  kRingMask = 36,     // slots - 1 of the current ring (both locks)
  kRingGen = 37,      // bumped when the ring is replaced or the head moves back (requeue):
                      // a JS view of an older generation is stale (its ring, its cached room)
  kConcurrency = 38,  // the limit (constant)
  kCapacity = 39,     // the most packets the queue holds; 0 = unbounded (constant)
  kTrackHeld = 40,    // 1: keep the held packets of threads that exit (constant)
  kToken = 41,        // this port's fast-path token (constant, nonzero, unique in the process)
  kControlWords = 48  // three 64-byte lines
};

// The lock state and the position in kTailLock and kHeadLock.
constexpr uint32_t kLockStateBits = 2;
constexpr uint32_t kLockStateMask = (1u << kLockStateBits) - 1;
constexpr uint32_t kPositionMask = 0xffffffffu >> kLockStateBits;

// Words of one ring slot (a packet).
enum SlotWord : uint32_t {
  kKeyLo = 0,
  kKeyHi = 1,
  kOverlappedLo = 2,
  kOverlappedHi = 3,
  kBytes = 4,
  kFlags = 5,       // the binding's flags (bigint bits); the engine never reads them
  kPayloadLo = 6,   // a PayloadTable token, 0 = no payload
  kPayloadHi = 7,
  kSlotWords = 8
};

// Words of a thread's consumer block.
enum ConsumerWord : uint32_t {
  // The kToken of the port on which JS may take a packet without calling native code, or 0.
  // Written only by the owning thread (inside native calls it makes); read by it in JS.
  kAssociated = 0,
  // 1 while the thread counts as running on its associated port. Guarded by that port's head
  // lock (the engine holds both):
  // a releaser sets it when it hands a packet to this thread's parked get.
  kConsumerRunning = 1,
  // 1: the thread's held record is the single packet in kHeldSlot (written by a JS get);
  // 0: it is the engine's own record (written by a native get). Owning thread only.
  kHeldInBlock = 2,
  // The port lock JS holds on this thread, for a thread that goes away in the middle of a JS call
  // (worker.terminate() stops JS where V8 looks for interrupts, which may be inside a critical
  // section): kLockPort is the kToken of the port (written before the lock is taken); kLockMark
  // is 1 + the lock word's index (kTailLock or kHeadLock) while JS holds that lock, its negation
  // once JS has released it and still owes the wake its exchange asked for, 0 otherwise. JS
  // writes the mark with plain stores right after its compare-exchange and right after its
  // exchange, with nothing between where V8 could stop it (shared-port.ts, "A thread that dies
  // in a lock"). Written only by the owning thread in JS; read by the engine as the thread goes
  // away (Port::releaseAbandonedLock).
  kLockPort = 3,
  kLockMark = 4,
  kHeldSlot = 8,  // kSlotWords words (payload words unused)
  kConsumerWords = 16
};

}  // namespace iocp
