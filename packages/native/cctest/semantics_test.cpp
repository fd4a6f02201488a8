// The IOCP rules one at a time, each interleaving forced with gates on the port's own counters.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "harness.h"
#include "support.h"

using namespace iocp;
using cctest::makePort;
using cctest::packet;
using cctest::waitForWaiters;
using cctest::waitUntil;

TEST(fifo_single_thread) {
  auto port = makePort(1);
  Consumer self(1);
  for (uint64_t i = 0; i < 1000; ++i) CHECK(port->post(packet(i, i + 1, 7)) == Status::Ok);
  Packet out[10];
  for (uint64_t i = 0; i < 1000; i += 10) {
    GetResult r = port->get(self, out, 10, 0);
    CHECK(r.status == Status::Ok && r.count == 10);
    for (uint64_t j = 0; j < 10; ++j) CHECK(out[j].key == i + j && out[j].overlapped == i + j + 1);
  }
  CHECK(port->get(self, out, 1, 0).status == Status::Timeout);
}

TEST(poll_and_timeout_return_timeout) {
  auto port = makePort(1);
  Consumer self(1);
  Packet out[1];
  CHECK(port->get(self, out, 1, 0).status == Status::Timeout);
  CHECK(port->get(self, out, 1, 5).status == Status::Timeout);
  CHECK(port->stats().waiting == 0);
}

// Three threads wait in the order A, B, C; packets go to C, then B, then A (LIFO).
TEST(waiters_released_lifo) {
  auto port = makePort(8);
  std::vector<uint64_t> got(3, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      Consumer self(i + 1);
      Packet out[1];
      if (port->get(self, out, 1, -1).status == Status::Ok) got[i] = out[0].key;
    });
    waitForWaiters(*port, i + 1);  // the next thread starts waiting only after this one
  }
  CHECK(port->post(packet(10)) == Status::Ok);  // to C, the newest
  waitForWaiters(*port, 2);
  CHECK(port->post(packet(20)) == Status::Ok);  // to B
  waitForWaiters(*port, 1);
  CHECK(port->post(packet(30)) == Status::Ok);  // to A
  for (auto& t : threads) t.join();
  CHECK(got[2] == 10 && got[1] == 20 && got[0] == 30);
}

// concurrency 2, four waiters: two are released, the rest stays queued; a running thread that
// calls get again takes the next packet itself and the count stays at 2.
TEST(concurrency_limit_holds_and_returning_thread_takes_next) {
  auto port = makePort(2);
  std::atomic<int> phase{0};
  std::atomic<int> firstRound{0};
  std::vector<std::thread> threads;
  std::atomic<int> secondTaken{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Consumer self(i + 1);
      Packet out[1];
      if (port->get(self, out, 1, -1).status != Status::Ok) return;
      firstRound.fetch_add(1);
      waitUntil([&] { return phase.load() >= 1; });
      // Second get: this thread stops counting, then takes a queued packet without sleeping.
      if (port->get(self, out, 1, 0).status == Status::Ok) secondTaken.fetch_add(1);
      waitUntil([&] { return phase.load() >= 2; });
      port->get(self, out, 1, -1);  // wait for close
    });
  }
  waitForWaiters(*port, 4);
  for (uint64_t k = 0; k < 10; ++k) CHECK(port->post(packet(k)) == Status::Ok);
  waitUntil([&] { return firstRound.load() == 2; });
  PortStats s = port->stats();
  CHECK(s.running == 2 && s.queued == 8 && s.waiting == 2);
  phase = 1;
  waitUntil([&] { return secondTaken.load() == 2; });
  s = port->stats();
  CHECK(s.running == 2 && s.queued == 6 && s.waiting == 2);
  phase = 2;
  waitForWaiters(*port, 2);  // the two runners came back with nothing to take... they took more
  port->close();
  for (auto& t : threads) t.join();
}

// A running thread inside blockingEnter lets the port release another waiter; leaving counts it
// again, over the limit.
TEST(blocking_releases_another_and_may_exceed_limit) {
  auto port = makePort(1);
  std::atomic<int> step{0};
  std::atomic<uint64_t> secondGot{0};
  std::thread runner([&] {
    Consumer self(1);
    Packet out[1];
    CHECK(port->get(self, out, 1, -1).status == Status::Ok);
    step = 1;
    waitUntil([&] { return step.load() == 2; });
    port->blockingEnter(self);
    waitUntil([&] { return step.load() == 3; });
    port->blockingLeave(self);
    step = 4;
    waitUntil([&] { return step.load() == 5; });
    port->get(self, out, 1, -1);
  });
  waitForWaiters(*port, 1);
  CHECK(port->post(packet(1)) == Status::Ok);
  waitUntil([&] { return step.load() == 1; });
  std::thread second([&] {
    Consumer self(2);
    Packet out[1];
    if (port->get(self, out, 1, -1).status == Status::Ok) secondGot = out[0].key;
    waitUntil([&] { return step.load() == 5; });
    port->get(self, out, 1, -1);
  });
  waitForWaiters(*port, 1);
  CHECK(port->post(packet(2)) == Status::Ok);
  CHECK(port->stats().queued == 1 && port->stats().running == 1);  // limit 1: it stays queued
  step = 2;
  waitUntil([&] { return secondGot.load() == 2; });  // released because the runner blocks
  CHECK(port->stats().running == 1);
  step = 3;
  waitUntil([&] { return step.load() == 4; });
  CHECK(port->stats().running == 2);  // the runner is back: over the limit for a while
  CHECK(port->stats().concurrency == 1);
  step = 5;
  waitForWaiters(*port, 2);
  CHECK(port->stats().running == 0);
  port->close();
  runner.join();
  second.join();
}

// A thread is associated with one port at a time: waiting on B ends its running on A, and A
// releases a waiter for its queued packet.
TEST(get_on_another_port_moves_the_thread) {
  auto a = makePort(1);
  auto b = makePort(1);
  std::atomic<int> step{0};
  std::atomic<uint64_t> otherGot{0};
  std::thread mover([&] {
    Consumer self(1);
    Packet out[1];
    CHECK(a->get(self, out, 1, -1).status == Status::Ok);
    step = 1;
    waitUntil([&] { return step.load() == 2; });
    b->get(self, out, 1, -1);  // moves to B and waits there until B closes
  });
  waitForWaiters(*a, 1);
  CHECK(a->post(packet(1)) == Status::Ok);
  waitUntil([&] { return step.load() == 1; });
  std::thread other([&] {
    Consumer self(2);
    Packet out[1];
    if (a->get(self, out, 1, -1).status == Status::Ok) otherGot = out[0].key;
  });
  waitForWaiters(*a, 1);
  CHECK(a->post(packet(2)) == Status::Ok);
  CHECK(a->stats().queued == 1);
  step = 2;
  waitUntil([&] { return otherGot.load() == 2; });
  CHECK(a->stats().running == 1);
  b->close();
  a->close();
  mover.join();
  other.join();
}

TEST(close_wakes_every_waiter_and_returns_queued) {
  auto port = makePort(1);
  std::atomic<int> closedSeen{0};
  std::vector<std::thread> threads;
  // One runner holds the only slot so that later posts stay queued.
  Consumer self(99);
  Packet out[1];
  CHECK(port->post(packet(0)) == Status::Ok);
  CHECK(port->get(self, out, 1, 0).status == Status::Ok);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      Consumer c(i + 1);
      Packet o[1];
      if (port->get(c, o, 1, -1).status == Status::Closed) closedSeen.fetch_add(1);
    });
  }
  waitForWaiters(*port, 3);
  uint64_t payloadValue = 42;
  Packet withData = packet(5);
  withData.data = Payload::copyOf(&payloadValue, sizeof payloadValue);
  CHECK(port->post(packet(4)) == Status::Ok);
  CHECK(port->post(withData) == Status::Ok);
  std::vector<Packet> remaining = port->close();
  for (auto& t : threads) t.join();
  CHECK(closedSeen.load() == 3);
  CHECK(remaining.size() == 2 && remaining[0].key == 4 && remaining[1].key == 5);
  CHECK(remaining[1].data != nullptr && remaining[1].data->length == sizeof payloadValue);
  Payload::destroy(remaining[1].data);
  CHECK(port->post(packet(6)) == Status::Closed);
  CHECK(port->get(self, out, 1, 0).status == Status::Closed);
  CHECK(port->close().empty());
  CHECK(port->shutdown() == Status::Closed);
}

TEST(shutdown_drains_then_closed) {
  auto port = makePort(4);
  Consumer self(1);
  for (uint64_t k = 0; k < 3; ++k) CHECK(port->post(packet(k)) == Status::Ok);
  CHECK(port->shutdown() == Status::Ok);
  CHECK(port->post(packet(9)) == Status::Closed);
  Packet out[2];
  GetResult r = port->get(self, out, 2, -1);
  CHECK(r.status == Status::Ok && r.count == 2 && out[0].key == 0 && out[1].key == 1);
  r = port->get(self, out, 2, -1);
  CHECK(r.status == Status::Ok && r.count == 1 && out[0].key == 2);
  CHECK(port->get(self, out, 1, -1).status == Status::Closed);
  CHECK(port->stats().state == 1);
}

TEST(shutdown_wakes_idle_waiters_when_queue_empty) {
  auto port = makePort(2);
  std::atomic<int> closedSeen{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Consumer c(i + 1);
      Packet o[1];
      while (port->get(c, o, 1, -1).status == Status::Ok) {}
      closedSeen.fetch_add(1);
    });
  }
  waitForWaiters(*port, 2);
  CHECK(port->post(packet(1)) == Status::Ok);
  port->shutdown();
  for (auto& t : threads) t.join();
  CHECK(closedSeen.load() == 2);
  CHECK(port->stats().dequeued == 1);
}

TEST(capacity_rejects_when_full_but_hands_to_waiters) {
  auto port = makePort(1, 2);
  Consumer self(1);
  CHECK(port->post(packet(1)) == Status::Ok);
  CHECK(port->post(packet(2)) == Status::Ok);
  CHECK(port->post(packet(3)) == Status::Full);
  CHECK(port->stats().posted == 2 && port->stats().queued == 2);
  Packet out[2];
  CHECK(port->get(self, out, 2, 0).count == 2);
  CHECK(port->post(packet(3)) == Status::Ok);
}

namespace {
struct AsyncProbe {
  Waiter waiter;
  std::atomic<int> wakes{0};
  AsyncProbe() {
    waiter.context = this;
    waiter.wake = [](Waiter* w, bool) { static_cast<AsyncProbe*>(w->context)->wakes.fetch_add(1); };
  }
};
}  // namespace

// Several async gets of one thread are all served with concurrency 1: a thread never deadlocks
// on itself, and it still counts once.
TEST(async_waiters_of_one_thread_never_deadlock) {
  auto port = makePort(1);
  Consumer main(0);
  AsyncProbe a, b, c;
  CHECK(port->getAsync(main, a.waiter) == Status::Ok);
  CHECK(port->getAsync(main, b.waiter) == Status::Ok);
  CHECK(port->getAsync(main, c.waiter) == Status::Ok);
  CHECK(port->stats().waiting == 3);
  for (uint64_t k = 1; k <= 3; ++k) CHECK(port->post(packet(k)) == Status::Ok);
  CHECK(c.wakes == 1 && b.wakes == 1 && a.wakes == 1);  // LIFO: c got 1, b 2, a 3
  CHECK(c.waiter.slot.key == 1 && b.waiter.slot.key == 2 && a.waiter.slot.key == 3);
  CHECK(port->stats().running == 1 && port->stats().waiting == 0);
  // A blocking thread cannot run while the async thread counts.
  Consumer worker(5);
  Packet out[1];
  CHECK(port->post(packet(4)) == Status::Ok);
  CHECK(port->get(worker, out, 1, 0).status == Status::Timeout);
  // The async thread's next getAsync ends its deliveries: the slot frees, and it takes packet 4.
  AsyncProbe d;
  CHECK(port->getAsync(main, d.waiter) == Status::Ok);
  CHECK(d.wakes == 1 && d.waiter.slot.key == 4);
  CHECK(port->stats().running == 1);
}

TEST(async_cancel_and_requeue_keep_every_packet) {
  auto port = makePort(1);
  Consumer main(0);
  AsyncProbe a;
  CHECK(port->getAsync(main, a.waiter) == Status::Ok);
  CHECK(port->cancelAsync(a.waiter));
  CHECK(port->stats().waiting == 0);
  AsyncProbe b;
  CHECK(port->getAsync(main, b.waiter) == Status::Ok);
  CHECK(port->post(packet(7)) == Status::Ok);
  CHECK(!port->cancelAsync(b.waiter));  // already delivered: too late to withdraw
  // The delivery was refused (its promise was aborted): it goes back to the head.
  CHECK(port->post(packet(8)) == Status::Ok);
  CHECK(port->requeue(main, &b.waiter.slot, 1, true) == Status::Ok);
  CHECK(port->stats().running == 0 && port->stats().queued == 2);
  Consumer worker(5);
  Packet out[2];
  GetResult r = port->get(worker, out, 2, 0);
  CHECK(r.count == 2 && out[0].key == 7 && out[1].key == 8);
}

TEST(close_wakes_async_waiters) {
  auto port = makePort(1);
  Consumer main(0);
  AsyncProbe a;
  CHECK(port->getAsync(main, a.waiter) == Status::Ok);
  port->close();
  CHECK(a.wakes == 1 && a.waiter.state == WaitState::Closed);
  AsyncProbe b;
  CHECK(port->getAsync(main, b.waiter) == Status::Closed);
}

// A thread that goes away leaves what it held as an orphan record; its running slot frees.
TEST(forget_records_held_packets_and_frees_the_slot) {
  auto port = makePort(1, 0, iocp::Port::kDefaultSpinNs, true);
  {
    Consumer dying(42);
    for (uint64_t k = 1; k <= 3; ++k) CHECK(port->post(packet(k, k * 10)) == Status::Ok);
    Packet out[2];
    CHECK(port->get(dying, out, 2, 0).count == 2);
    CHECK(dying.held().size() == 2);
    CHECK(port->stats().running == 1);
    port->forget(dying);
    CHECK(port->stats().running == 0);
  }
  std::vector<HeldPacket> held = port->recoverHeld(42);
  CHECK(held.size() == 2 && held[0].key == 1 && held[1].key == 2 && held[1].overlapped == 20);
  CHECK(port->recoverHeld(42).empty());
  // A later get ends the previous delivery: nothing held any more.
  Consumer live(43);
  Packet out[1];
  CHECK(port->get(live, out, 1, 0).count == 1);
  CHECK(port->get(live, out, 1, 0).status == Status::Timeout);
  CHECK(live.held().empty());
}

// Without trackHeld, a thread that goes away leaves nothing behind: records cannot pile up on
// a port that many short-lived threads use and no pool recovers from.
TEST(forget_keeps_nothing_without_track_held) {
  auto port = makePort(1);
  for (uint64_t thread = 1; thread <= 1000; ++thread) {
    Consumer dying(thread);
    CHECK(port->post(packet(thread)) == Status::Ok);
    Packet out[1];
    CHECK(port->get(dying, out, 1, 0).count == 1);
    port->forget(dying);
  }
  for (uint64_t thread = 1; thread <= 1000; ++thread) CHECK(port->recoverHeld(thread).empty());
  CHECK(port->stats().running == 0);
}

// A thread that cannot use what it received (it is being terminated) gives it back to the head.
TEST(requeue_from_a_dying_thread_goes_to_the_head) {
  auto port = makePort(1);
  Consumer dying(1);
  for (uint64_t k = 1; k <= 3; ++k) CHECK(port->post(packet(k)) == Status::Ok);
  Packet out[2];
  CHECK(port->get(dying, out, 2, 0).count == 2);
  CHECK(port->requeue(dying, out, 2, false) == Status::Ok);
  CHECK(port->stats().running == 0 && port->stats().dequeued == 0);
  Consumer next(2);
  Packet all[3];
  GetResult r = port->get(next, all, 3, 0);
  CHECK(r.count == 3 && all[0].key == 1 && all[1].key == 2 && all[2].key == 3);
}

// postMany: one lock for the lot, each packet under post's rules, a partial post at capacity.
TEST(post_many_hands_to_waiter_then_queues_and_stops_at_capacity) {
  auto port = makePort(2, 3);  // 2: the released waiter still counts when the test drains
  std::atomic<uint64_t> got{0};
  std::thread waiter([&] {
    Consumer self(1);
    Packet out[1];
    if (port->get(self, out, 1, -1).status == Status::Ok) got = out[0].key + 1;
  });
  waitForWaiters(*port, 1);
  Packet packets[5];
  for (uint64_t k = 0; k < 5; ++k) packets[k] = packet(k);
  Port::PostManyResult r = port->postMany(packets, 5);
  // packet 0 went to the waiter; 1, 2, 3 fill the capacity; 4 is refused.
  CHECK(r.status == Status::Full && r.posted == 4);
  waiter.join();
  CHECK(got.load() == 1);
  Consumer self(2);
  Packet out[4];
  GetResult g = port->get(self, out, 4, 0);
  CHECK(g.count == 3 && out[0].key == 1 && out[2].key == 3);
  port->close();
  CHECK(port->postMany(packets, 1).status == Status::Closed);
}

// A thread counted through an async delivery on A moves when it gets on B: A's slot frees.
TEST(async_count_moves_with_the_thread) {
  auto a = makePort(1);
  auto b = makePort(1);
  Consumer main(0);
  AsyncProbe first;
  CHECK(a->getAsync(main, first.waiter) == Status::Ok);
  CHECK(a->post(packet(1)) == Status::Ok);
  CHECK(a->stats().running == 1);
  Packet out[1];
  CHECK(b->get(main, out, 1, 0).status == Status::Timeout);  // a get elsewhere
  CHECK(a->stats().running == 0);
  // And the other way round: a blocking delivery on B ends when the thread getAsyncs on A.
  CHECK(b->post(packet(2)) == Status::Ok);
  CHECK(b->get(main, out, 1, 0).count == 1);
  CHECK(b->stats().running == 1);
  AsyncProbe second;
  CHECK(a->getAsync(main, second.waiter) == Status::Ok);
  CHECK(b->stats().running == 0);
  CHECK(a->cancelAsync(second.waiter));
}

// blocking takes an async-counted thread out of the count too, and never counts it twice.
TEST(blocking_suspends_async_counts_and_never_double_counts) {
  auto port = makePort(1);
  Consumer main(0);
  AsyncProbe first;
  CHECK(port->getAsync(main, first.waiter) == Status::Ok);
  CHECK(port->post(packet(1)) == Status::Ok);
  CHECK(port->stats().running == 1);
  port->blockingEnter(main);
  CHECK(port->stats().running == 0);
  port->blockingLeave(main);
  CHECK(port->stats().running == 1);
  // A blocking-get delivery, then a getAsync delivery inside the blocking stretch: counts once.
  Packet out[1];
  CHECK(port->post(packet(2)) == Status::Ok);
  CHECK(port->get(main, out, 1, 0).count == 1);
  CHECK(port->stats().running == 1);
  port->blockingEnter(main);
  CHECK(port->stats().running == 0);
  AsyncProbe inner;
  CHECK(port->getAsync(main, inner.waiter) == Status::Ok);
  CHECK(port->post(packet(3)) == Status::Ok);
  CHECK(inner.wakes == 1 && port->stats().running == 1);
  port->blockingLeave(main);
  CHECK(port->stats().running == 1);
}

// A parked get whose abandon check fires gives up: its thread is going away.
TEST(parked_get_gives_up_when_abandoned) {
  auto port = makePort(1, 0, 0);
  std::atomic<bool> dying{false};
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    Consumer self(1);
    self.setAbandonCheck([](void* flag) { return static_cast<std::atomic<bool>*>(flag)->load(); },
                         &dying);
    Packet out[1];
    result = static_cast<int>(port->get(self, out, 1, -1).status);
  });
  waitForWaiters(*port, 1);
  dying = true;
  waiter.join();
  CHECK(result.load() == static_cast<int>(Status::Abandoned));
  CHECK(port->stats().waiting == 0);
  CHECK(port->post(packet(1)) == Status::Ok);
  CHECK(port->stats().queued == 1);  // nobody took it
}
