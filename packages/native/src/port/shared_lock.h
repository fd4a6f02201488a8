// A port's lock words (its tail lock and its head lock, PortLock below): each one word in the
// control block that C++ and JS both take (Drepper's futex mutex, "Futexes Are Tricky", mutex 2). States: 0 free, 1 held, 2 held and someone may be
// parked on the word.
//
//   lock    CAS 0 -> 1 (acquire). JS tries exactly this and, when it fails, makes the whole call
//           in native code instead, which spins briefly and then parks: it swaps in 2 and sleeps
//           on the word while it stays 2.
//   unlock  exchange -> 0 (release); if the old value was 2, wake one parked thread. JS does
//           the same exchange and calls into native code only to wake (old value 2).
//
// The acquire of the lock pairs with the release of the previous unlock, in either language
// (JS Atomics operations are sequentially consistent, which is at least as strong), so every
// word the lock guards may be read and written with relaxed atomics (C++) or plain typed-array
// accesses (JS) inside the critical section.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "park.h"

namespace iocp {

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class SharedLock {
 public:
  explicit SharedLock(std::atomic<uint32_t>& word) noexcept : word_(word) {}

  void lock() noexcept {
    uint32_t seen = 0;
    if (word_.compare_exchange_strong(seen, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lockSlow();
  }

  bool tryLock() noexcept {
    uint32_t seen = 0;
    return word_.compare_exchange_strong(seen, 1, std::memory_order_acquire, std::memory_order_relaxed);
  }

  // Also makes the wakes deferred while the lock was held (park.h, deferWake).
  void unlock() noexcept {
    release();
    flushDeferredWakes();
  }

  // unlock() without making the deferred wakes: for a lock released while another is held.
  void release() noexcept {
    if (word_.exchange(0, std::memory_order_release) == 2) parkWake(word_, false);
  }

  // Wakes one thread parked on the lock word: what JS asks for when its unlock saw 2.
  void wakeOne() noexcept { parkWake(word_, false); }

 private:
  void lockSlow() noexcept {
    // Critical sections are a few dozen instructions: a short spin usually wins.
    for (int i = 0; i < 100; ++i) {
      uint32_t seen = 0;
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_weak(seen, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        return;
      }
      if (i < 50) cpuRelax();
      else std::this_thread::yield();
    }
    // Mark the lock contended and sleep until it is handed back free.
    while (word_.exchange(2, std::memory_order_acquire) != 0) parkWait(word_, 2, -1);
  }

  std::atomic<uint32_t>& word_;
};

// A port's two locks (shared_layout.h): the tail lock, which a JS post takes, and the head
// lock, which a JS get takes. The engine takes both, always the tail lock first, and JS never
// holds two, so no thread waits for a lock while holding one that the other's holder wants.
// Held together they exclude every other thread from every word of the port, as one lock would.
class PortLock {
 public:
  PortLock(std::atomic<uint32_t>& tailWord, std::atomic<uint32_t>& headWord) noexcept
      : tail_(tailWord), head_(headWord) {}

  void lock() noexcept {
    tail_.lock();
    head_.lock();
  }

  // The head lock first; the deferred wakes once both are free (a woken thread needs both).
  void unlock() noexcept {
    head_.release();
    tail_.unlock();
  }

  // Wakes one thread parked on the tail lock (`head` false) or the head lock (true): what JS
  // asks for when its unlock of that word saw 2.
  void wakeOne(bool head) noexcept { (head ? head_ : tail_).wakeOne(); }

 private:
  SharedLock tail_;
  SharedLock head_;
};

// RAII for either of the above.
template <typename Lock>
class LockGuard {
 public:
  explicit LockGuard(Lock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~LockGuard() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& lock_;
};
using SharedLockGuard = LockGuard<SharedLock>;
using PortLockGuard = LockGuard<PortLock>;

}  // namespace iocp
