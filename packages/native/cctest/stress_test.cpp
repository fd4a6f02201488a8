// N producers x M consumers through one port, counting every packet: none lost, none
// duplicated, each producer's packets seen in order by every consumer, the concurrency limit
// never exceeded, and every payload delivered exactly once (AddressSanitizer sees leaks and
// double frees). Producers encode (producer << 32) | sequence in the key.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "harness.h"
#include "support.h"

using namespace iocp;

namespace {

uint64_t packetsPerRun() {
  const char* env = std::getenv("CCTEST_PACKETS");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10000000ULL;
}

struct Outcome {
  bool ok = true;
  uint64_t received = 0;
};

void runStress(unsigned producers, unsigned consumers, uint32_t concurrency, size_t batch,
               size_t capacity, uint32_t spinNs, Outcome& outcome) {
  const uint64_t total = packetsPerRun();
  const uint64_t perProducer = total / producers;
  auto port = cctest::makePort(concurrency, capacity, spinNs);

  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> seen(producers);
  for (auto& s : seen) {
    s.reset(new std::atomic<uint8_t>[perProducer]);
    for (uint64_t i = 0; i < perProducer; ++i) s[i].store(0, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> received{0};
  std::atomic<bool> broken{false};
  std::atomic<int> inside{0};      // consumers between a get's return and their next get
  std::atomic<int> mostInside{0};

  std::vector<std::thread> threads;
  for (unsigned c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      Consumer self(100 + c);
      std::vector<uint64_t> next(producers, 0);  // per-producer FIFO as this consumer sees it
      std::vector<Packet> out(batch);
      const size_t max = (c % 2 == 0) ? 1 : batch;  // half single gets, half batches
      for (;;) {
        GetResult r = port->get(self, out.data(), max, -1);
        if (r.status == Status::Closed) break;
        if (r.status != Status::Ok) { broken = true; break; }
        int now = inside.fetch_add(1, std::memory_order_relaxed) + 1;
        int seenMost = mostInside.load(std::memory_order_relaxed);
        while (now > seenMost && !mostInside.compare_exchange_weak(seenMost, now)) {}
        for (size_t i = 0; i < r.count; ++i) {
          const Packet& p = out[i];
          const uint64_t producer = p.key >> 32, seq = p.key & 0xffffffffu;
          if (producer >= producers || seq >= perProducer || seq < next[producer] ||
              p.overlapped != seq * 3 || p.bytes != static_cast<uint32_t>(seq)) {
            broken = true;
          } else {
            next[producer] = seq + 1;
            if (seen[producer][seq].exchange(1, std::memory_order_relaxed) != 0) broken = true;
          }
          if (p.data != nullptr) {
            uint64_t copy;
            if (p.data->length != sizeof copy) broken = true;
            std::memcpy(&copy, p.data->bytes(), sizeof copy);
            if (copy != p.key) broken = true;
            Payload::destroy(p.data);
          } else if (seq % 64 == 0) {
            broken = true;
          }
        }
        received.fetch_add(r.count, std::memory_order_relaxed);
        inside.fetch_sub(1, std::memory_order_relaxed);
      }
    });
  }
  std::vector<std::thread> posters;
  for (unsigned pr = 0; pr < producers; ++pr) {
    posters.emplace_back([&, pr] {
      for (uint64_t seq = 0; seq < perProducer; ++seq) {
        Packet p = cctest::packet((uint64_t(pr) << 32) | seq, seq * 3, static_cast<uint32_t>(seq));
        if (seq % 64 == 0) {
          const uint64_t key = p.key;
          p.data = Payload::copyOf(&key, sizeof key);
        }
        for (;;) {
          Status s = port->post(p);
          if (s == Status::Ok) break;
          if (s != Status::Full) { broken = true; Payload::destroy(p.data); return; }
          std::this_thread::yield();  // back-pressure: the queue is at capacity
        }
      }
    });
  }
  for (auto& t : posters) t.join();
  port->shutdown();  // consumers drain what is left, then see Closed
  for (auto& t : threads) t.join();

  outcome.received = received.load();
  outcome.ok = !broken && outcome.received == perProducer * producers &&
               mostInside.load() <= static_cast<int>(concurrency);
  for (unsigned pr = 0; pr < producers && outcome.ok; ++pr) {
    for (uint64_t i = 0; i < perProducer; ++i) {
      if (seen[pr][i].load(std::memory_order_relaxed) != 1) { outcome.ok = false; break; }
    }
  }
  PortStats st = port->stats();
  if (st.posted != perProducer * producers || st.dequeued != st.posted || st.queued != 0) {
    outcome.ok = false;
  }
}

}  // namespace

TEST(stress_4_producers_4_consumers_concurrency_2) {
  Outcome o;
  runStress(4, 4, 2, 32, 0, Port::kDefaultSpinNs, o);
  CHECK(o.ok);
}

TEST(stress_2_producers_3_consumers_bounded_capacity_no_spin) {
  Outcome o;
  runStress(2, 3, 3, 16, 1024, 0, o);  // waiters park at once: the condition-variable path
  CHECK(o.ok);
}
