// Parking a thread on a 32-bit word, the one OS primitive the engine needs: the Linux futex,
// WaitOnAddress on Windows, and elsewhere a small parking lot of mutex + condition variable
// buckets keyed by address. The contract is the futex's:
//
//   parkWait(word, expected, timeoutNs) sleeps only if *word still equals `expected` when the
//   thread is about to sleep (checked atomically with going to sleep), and returns on a wake, on
//   the timeout (< 0 = none), or spuriously. Callers always re-check their condition in a loop.
//   parkWake(word, all) wakes one (or all) threads parked on `word`. A waker changes the word
//   before it wakes, so a wake-up is never lost between a waiter's check and its sleep.
//
// The word may be anywhere in the process's memory, including the blocks shared with JS.
#pragma once

#include <atomic>
#include <cstdint>

namespace iocp {

void parkWait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeoutNs) noexcept;
void parkWake(std::atomic<uint32_t>& word, bool all) noexcept;

// A wake to make once the calling thread has released the lock it holds (SharedLock::unlock
// flushes them): a thread woken while its waker still holds the port's lock would only wake to
// wait for that lock. The word is never dereferenced again, only handed to the OS, which is
// safe even if its owner has gone meanwhile (a futex wake on a stale address wakes nobody).
void deferWake(std::atomic<uint32_t>& word) noexcept;
void flushDeferredWakes() noexcept;

}  // namespace iocp
