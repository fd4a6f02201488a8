// See park.h. One implementation per platform; the fallback is correct everywhere.
#include "park.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#elif defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#endif

namespace iocp {

namespace {

// Per thread: the words to wake after the current critical section. A fixed array, so that
// deferring never allocates; when it is full, the wake happens at once (correct, only slower).
constexpr int kDeferredMax = 64;
thread_local std::atomic<uint32_t>* tDeferred[kDeferredMax];
thread_local int tDeferredCount = 0;

}  // namespace

void deferWake(std::atomic<uint32_t>& word) noexcept {
  if (tDeferredCount == kDeferredMax) {
    parkWake(word, false);
    return;
  }
  tDeferred[tDeferredCount++] = &word;
}

void flushDeferredWakes() noexcept {
  // Swapped out first: a wake never defers more, but keep the loop simple and reentrant.
  while (tDeferredCount > 0) {
    std::atomic<uint32_t>* word = tDeferred[--tDeferredCount];
    parkWake(*word, false);
  }
}

#if defined(__linux__)

// A private futex: the word is keyed by this process's address space, which is all we share.
void parkWait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeoutNs) noexcept {
  struct timespec relative;
  struct timespec* timeout = nullptr;
  if (timeoutNs >= 0) {
    relative.tv_sec = static_cast<time_t>(timeoutNs / 1000000000);
    relative.tv_nsec = static_cast<long>(timeoutNs % 1000000000);
    timeout = &relative;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}

void parkWake(std::atomic<uint32_t>& word, bool all) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, all ? 0x7fffffff : 1,
          nullptr, nullptr, 0);
}

#elif defined(_WIN32)

// WaitOnAddress compares and sleeps atomically, like the futex (Windows 8 and later;
// link with Synchronization.lib / -lsynchronization).
void parkWait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeoutNs) noexcept {
  DWORD ms = INFINITE;
  if (timeoutNs >= 0) {
    const int64_t rounded = (timeoutNs + 999999) / 1000000;
    ms = rounded >= static_cast<int64_t>(INFINITE) ? INFINITE - 1 : static_cast<DWORD>(rounded);
  }
  WaitOnAddress(reinterpret_cast<volatile VOID*>(&word), &expected, sizeof(uint32_t), ms);
}

void parkWake(std::atomic<uint32_t>& word, bool all) noexcept {
  if (all) WakeByAddressAll(reinterpret_cast<PVOID>(&word));
  else WakeByAddressSingle(reinterpret_cast<PVOID>(&word));
}

#else

// The parking lot: a waiter checks the word and sleeps under its bucket's mutex; a waker takes
// the same mutex after changing the word, so the check-then-sleep cannot miss the wake. Every
// waiter of a bucket is woken (buckets are shared by unrelated words; they re-check and sleep).
namespace {

struct Bucket {
  std::mutex mutex;
  std::condition_variable cv;
};

Bucket& bucketOf(const void* address) {
  static Bucket buckets[64];
  const auto bits = reinterpret_cast<uintptr_t>(address);
  return buckets[(bits >> 2 ^ bits >> 8) % 64];
}

}  // namespace

void parkWait(std::atomic<uint32_t>& word, uint32_t expected, int64_t timeoutNs) noexcept {
  Bucket& bucket = bucketOf(&word);
  std::unique_lock<std::mutex> lock(bucket.mutex);
  if (word.load(std::memory_order_acquire) != expected) return;
  if (timeoutNs < 0) bucket.cv.wait(lock);
  else bucket.cv.wait_for(lock, std::chrono::nanoseconds(timeoutNs));
}

void parkWake(std::atomic<uint32_t>& word, bool) noexcept {
  Bucket& bucket = bucketOf(&word);
  { std::lock_guard<std::mutex> lock(bucket.mutex); }
  bucket.cv.notify_all();
}

#endif

}  // namespace iocp
