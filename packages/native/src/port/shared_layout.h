// The memory that C++ and JS share: one layout, described once. The binding exports every index
// below to JS at load, and @iocp/core checks its own constants against them (port/layout.ts), so
// the two sides cannot drift apart silently.
//
// Three blocks, each native-owned and reference-counted (SharedBlock), each seen from JS as an
// Int32Array / Uint32Array over an ArrayBuffer that holds a reference to it:
//
//   control  (per port)    ControlWord below: the lock word, the state, the concurrency counts,
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

// Words of the control block. Guarded by the lock word (kLock) unless noted.
enum ControlWord : uint32_t {
  kLock = 0,          // 0 free, 1 held, 2 held and a thread may be parked on it (futex protocol)
  kState = 1,         // 0 open, 1 shut down, 2 closed
  kRunning = 2,       // threads counted as running
  kConcurrency = 3,   // the limit (constant)
  kWaiting = 4,       // waiters linked in the LIFO stack (blocking and async)
  kAsyncWaiting = 5,  // of which async: they may be released while kRunning >= kConcurrency
  kHead = 6,          // position of the oldest queued packet (wraps; slot = position & mask)
  kTail = 7,          // position after the newest one; queued = tail - head (uint32 arithmetic)
  kRingMask = 8,      // slots - 1 of the current ring
  kRingGen = 9,       // bumped when the ring is replaced: a JS view of an older ring is stale
  kCapacity = 10,     // the most packets the queue holds; 0 = unbounded (constant)
  kPostedLo = 11,     // packets accepted by post, as two uint32 halves
  kPostedHi = 12,
  kDequeuedLo = 13,   // packets handed to consumers
  kDequeuedHi = 14,
  kTrackHeld = 15,    // 1: keep the held packets of threads that exit (constant)
  kToken = 16,        // this port's fast-path token (constant, nonzero, unique in the process)
  kControlWords = 32  // 128 bytes: the lock word and what it guards share two cache lines
};

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
  // 1 while the thread counts as running on its associated port. Guarded by that port's lock:
  // a releaser sets it when it hands a packet to this thread's parked get.
  kConsumerRunning = 1,
  // 1: the thread's held record is the single packet in kHeldSlot (written by a JS get);
  // 0: it is the engine's own record (written by a native get). Owning thread only.
  kHeldInBlock = 2,
  kHeldSlot = 8,  // kSlotWords words (payload words unused)
  kConsumerWords = 16
};

}  // namespace iocp
