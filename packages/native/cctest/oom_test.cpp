// Running out of memory never loses a packet: each engine call that allocates does so before it
// changes anything, so std::bad_alloc leaves the port as it was (or, for a batch, with a prefix
// posted and the rest still the caller's). The allocation failure is injected by replacing the
// global operator new for this binary: armed per thread, it throws on the Nth allocation.
#include <cstdlib>
#include <new>
#include <vector>

#include "harness.h"
#include "support.h"

using namespace iocp;

namespace {

thread_local long gAllocationsLeft = -1;  // -1: never fail
thread_local bool gFailOnce = false;       // fail the next allocation only

void* allocate(std::size_t size, std::size_t align) {
  if (gFailOnce) {
    gFailOnce = false;
    throw std::bad_alloc();
  }
  if (gAllocationsLeft == 0) throw std::bad_alloc();
  if (gAllocationsLeft > 0) --gAllocationsLeft;
  if (size == 0) size = 1;
  void* memory = nullptr;
  if (align <= alignof(std::max_align_t)) {
    memory = std::malloc(size);
  } else if (posix_memalign(&memory, align, size) != 0) {
    memory = nullptr;
  }
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

// Fails every allocation of this thread from now on (until disarmed).
struct OutOfMemory {
  OutOfMemory() { gAllocationsLeft = 0; }
  ~OutOfMemory() { gAllocationsLeft = -1; }
};

}  // namespace

// Every replaced form allocates with malloc / posix_memalign, so free() is the matching release.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t align) { return allocate(size, static_cast<std::size_t>(align)); }
void* operator new[](std::size_t size, std::align_val_t align) { return allocate(size, static_cast<std::size_t>(align)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// A post that needs the ring to grow, without memory: bad_alloc, nothing posted, queue intact.
TEST(oom_post_that_must_grow_the_ring_posts_nothing) {
  auto port = cctest::makePort(1);
  for (uint64_t k = 0; k < Port::kInitialRingSlots; ++k) CHECK(port->post(cctest::packet(k)) == Status::Ok);
  bool threw = false;
  {
    OutOfMemory oom;
    try {
      port->post(cctest::packet(9999));
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(port->stats().queued == Port::kInitialRingSlots && port->stats().posted == Port::kInitialRingSlots);
  Consumer self(1);
  std::vector<Packet> out(Port::kInitialRingSlots);
  CHECK(port->get(self, out.data(), out.size(), 0).count == Port::kInitialRingSlots);
  for (uint64_t k = 0; k < Port::kInitialRingSlots; ++k) CHECK(out[k].key == k);
}

// postMany that cannot grow the ring: what fits is posted, the rest stays with the caller.
TEST(oom_post_many_posts_a_prefix_and_reports_full) {
  auto port = cctest::makePort(1);
  std::vector<Packet> packets;
  for (uint64_t k = 0; k < Port::kInitialRingSlots + 10; ++k) packets.push_back(cctest::packet(k));
  Port::PostManyResult result{Status::Ok, 0};
  {
    OutOfMemory oom;
    result = port->postMany(packets.data(), packets.size());
  }
  CHECK(result.status == Status::Full);
  CHECK(port->stats().queued == result.posted && port->stats().posted == result.posted);
  // The caller posts the rest later; FIFO holds across the two calls.
  CHECK(port->postMany(packets.data() + result.posted, packets.size() - result.posted).status == Status::Ok);
  Consumer self(1);
  std::vector<Packet> out(packets.size());
  CHECK(port->get(self, out.data(), out.size(), 0).count == packets.size());
  for (uint64_t k = 0; k < packets.size(); ++k) CHECK(out[k].key == k);
}

// A get on a port that tracks held packets reserves its record before it takes anything.
TEST(oom_get_reserves_its_held_record_before_taking) {
  auto port = cctest::makePort(1, 0, Port::kDefaultSpinNs, true);
  Consumer self(1);
  for (uint64_t k = 0; k < 4; ++k) CHECK(port->post(cctest::packet(k)) == Status::Ok);
  Packet out[4];
  bool threw = false;
  {
    OutOfMemory oom;
    try {
      port->get(self, out, 4, 0);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(port->stats().queued == 4 && port->stats().dequeued == 0 && port->stats().running == 0);
  CHECK(port->get(self, out, 4, 0).count == 4 && out[0].key == 0 && out[3].key == 3);
  CHECK(self.held().size() == 4);
}

// A requeue that cannot grow the ring keeps the packets as an orphan record: recoverable. (With
// no memory at all, not even for that record, they would be lost; the binding then warns.)
TEST(oom_requeue_keeps_the_packets_recoverable) {
  auto port = cctest::makePort(1, 0, Port::kDefaultSpinNs, true);
  Consumer dying(7);
  Packet out[2];
  CHECK(port->post(cctest::packet(1)) == Status::Ok);
  CHECK(port->post(cctest::packet(2)) == Status::Ok);
  CHECK(port->get(dying, out, 2, 0).count == 2);
  // Fill the ring so that putting them back needs it to grow.
  for (uint64_t k = 10; k < 10 + Port::kInitialRingSlots; ++k) CHECK(port->post(cctest::packet(k)) == Status::Ok);
  gFailOnce = true;  // the ring's growth fails; the orphan record can still be made
  const Status status = port->requeue(dying, out, 2, false);
  gFailOnce = false;
  CHECK(status == Status::Full);
  std::vector<HeldPacket> kept = port->recoverHeld(7);
  CHECK(kept.size() == 2 && kept[0].key == 1 && kept[1].key == 2);
  CHECK(port->stats().running == 0);
}
