// The JS half of the packet path (js_mirror.h) on its own, one step at a time: the cases where
// what a JS view caches (SharedPort.#roomUntil, #queuedUntil) could go stale under an engine
// call. The stress tests run the same steps at speed.
#include "harness.h"
#include "js_mirror.h"
#include "support.h"

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
