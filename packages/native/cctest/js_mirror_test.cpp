// The JS half of the packet path (js_mirror.h) on its own, one step at a time: the cases where
// what a JS view caches (SharedPort.#roomUntil, #queuedUntil) could go stale under an engine
// call, and a JS thread stopped inside a lock. The stress tests run the same steps at speed.
#include "harness.h"
#include "js_mirror.h"
#include "support.h"

#include <chrono>
#include <thread>

using namespace iocp;
using cctest::JsMirror;
using cctest::makePort;
using cctest::packet;

// A requeue moves the head back: the slot a JS post counted as free is taken again. The engine
// bumps kRingGen, so the post does not trust its cached room, and the capacity still holds.
TEST(js_post_after_requeue_keeps_the_capacity) {
  auto port = makePort(1, 2);
  Consumer taker(1);
  Consumer poster(2);
  CHECK(port->post(packet(1)) == Status::Ok);
  Packet taken;
  CHECK(port->get(taker, &taken, 1, 0).count == 1);
  JsMirror js(*port, poster);
  CHECK(js.post(2, 0, 0) == JsMirror::kOk);  // caches room for two: the queue was empty
  CHECK(port->requeue(taker, &taken, 1, false) == Status::Ok);
  CHECK(port->stats().queued == 2);
  CHECK(js.post(3, 0, 0) == JsMirror::kSlow);  // its view is stale
  js.refreshIfStale();
  CHECK(js.post(3, 0, 0) == JsMirror::kFull);
  CHECK(port->stats().queued == 2);
  Packet out[2];
  CHECK(port->get(taker, out, 2, 0).count == 2);
  CHECK(out[0].key == 1 && out[1].key == 2);
}

// A JS get's cached count of queued packets is a count of dequeues, not a position: packets
// that another consumer took are not taken again.
TEST(js_get_after_another_consumer_took_the_rest) {
  auto port = makePort(2);
  Consumer a(1);
  Consumer b(2);
  for (uint64_t key = 1; key <= 4; ++key) CHECK(port->post(packet(key)) == Status::Ok);
  Packet out[2];
  CHECK(port->get(a, out, 1, 0).count == 1 && out[0].key == 1);  // native: associates `a`
  JsMirror js(*port, a);
  Packet p;
  CHECK(js.get(p) && p.key == 2);  // caches three queued
  CHECK(port->get(b, out, 2, 0).count == 2 && out[0].key == 3 && out[1].key == 4);
  CHECK(!js.get(p));  // empty: the call goes native
  CHECK(port->post(packet(5)) == Status::Ok);
  CHECK(js.get(p) && p.key == 5);
  const PortStats st = port->stats();
  CHECK(st.posted == 5 && st.dequeued == 5 && st.queued == 0);
}

// A JS post and a JS get on one port, with the ring's room used up and grown by the engine:
// every packet arrives once, in order, across the generations.
TEST(js_post_and_get_across_a_grown_ring) {
  auto port = makePort(1);
  Consumer producer(1);
  Consumer consumer(2);
  JsMirror poster(*port, producer);
  Packet first;
  CHECK(port->post(packet(0)) == Status::Ok);
  CHECK(port->get(consumer, &first, 1, 0).count == 1);  // associates the consumer
  JsMirror getter(*port, consumer);
  const uint64_t total = Port::kInitialRingSlots * 3;
  uint64_t next = 1;
  uint64_t expected = 1;
  while (expected <= total) {
    // Post a burst larger than the ring, natively when JS cannot (the ring grows there).
    for (int i = 0; i < 700 && next <= total; ++i, ++next) {
      poster.refreshIfStale();
      if (poster.post(next, 0, 0) != JsMirror::kOk) CHECK(port->post(packet(next)) == Status::Ok);
    }
    for (int i = 0; i < 500 && expected < next; ++i, ++expected) {
      getter.refreshIfStale();
      Packet p;
      if (!getter.get(p)) CHECK(port->get(consumer, &p, 1, 0).count == 1);
      CHECK(p.key == expected);
    }
  }
  CHECK(port->stats().queued == 0);
}

// worker.terminate() stops JS at a function entry, which may be inside a critical section. The
// consumer block's mark says which lock the thread held, and as the thread goes away the
// binding calls releaseAbandonedLock: the lock is free again, the call that was cut short
// published nothing, and every other thread goes on.
TEST(js_thread_stopped_holding_a_lock_has_it_released) {
  auto port = makePort(1);
  auto other = makePort(1);
  Consumer stopped(1);
  Consumer c(2);
  JsMirror js(*port, stopped);
  CHECK(js.post(1, 0, 0) == JsMirror::kOk);
  auto state = [&](uint32_t word) { return (*port->control())[word].load() & kLockStateMask; };
  auto mark = [&] { return static_cast<int32_t>((*stopped.block())[kLockMark].load()); };
  CHECK(mark() == 0);

  CHECK(js.stopHolding(kTailLock));
  CHECK(state(kTailLock) == 1 && mark() == static_cast<int32_t>(kTailLock + 1));
  CHECK(!other->releaseAbandonedLock(stopped));  // the mark names another port
  CHECK(port->releaseAbandonedLock(stopped));
  CHECK(state(kTailLock) == 0 && mark() == 0);
  CHECK(!port->releaseAbandonedLock(stopped));  // once
  CHECK(port->post(packet(2)) == Status::Ok);

  CHECK(js.stopHolding(kHeadLock));
  CHECK(state(kHeadLock) == 1 && mark() == static_cast<int32_t>(kHeadLock + 1));
  CHECK(port->releaseAbandonedLock(stopped));
  CHECK(state(kHeadLock) == 0 && mark() == 0);
  Packet out[2];
  CHECK(port->get(c, out, 2, 0).count == 2);
  CHECK(out[0].key == 1 && out[1].key == 2);
}

// The thread was stopped between its unlocking exchange, which saw a thread parked on the word,
// and the wake it then owed: releaseAbandonedLock makes the wake.
TEST(js_thread_stopped_before_its_wake_has_the_wake_made) {
  auto port = makePort(1);
  Consumer stopped(1);
  Consumer c(2);
  JsMirror js(*port, stopped);
  CHECK(js.stopHolding(kTailLock));
  std::thread poster([&] { CHECK(port->post(packet(7)) == Status::Ok); });  // parks on the tail lock
  while (((*port->control())[kTailLock].load() & kLockStateMask) != 2) std::this_thread::yield();
  // Let it fall asleep on the word (its spin is a few microseconds); if it has not yet, the
  // exchange below changes the word under it and it does not sleep at all.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(js.stopOwingWake(kTailLock));
  CHECK(static_cast<int32_t>((*stopped.block())[kLockMark].load()) == -static_cast<int32_t>(kTailLock + 1));
  CHECK(port->releaseAbandonedLock(stopped));
  poster.join();  // without the wake, it would sleep for ever
  Packet out;
  CHECK(port->get(c, &out, 1, 0).count == 1 && out.key == 7);
}
