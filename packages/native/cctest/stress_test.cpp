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
#include "js_mirror.h"
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

// jsMirror: odd producers post and odd consumers get through the JS fast path's steps
// (js_mirror.h), falling back to the engine's own calls exactly when JS would, so that both
// halves of the shared-memory protocol run on one port at once.
void runStress(unsigned producers, unsigned consumers, uint32_t concurrency, size_t batch,
               size_t capacity, uint32_t spinNs, Outcome& outcome, bool jsMirror = false) {
  const uint64_t total = packetsPerRun();
  const uint64_t perProducer = total / producers;
  auto port = cctest::makePort(concurrency, capacity, spinNs, jsMirror);

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
      cctest::JsMirror js(*port, self);
      const bool viaJs = jsMirror && c % 2 == 1;
      for (;;) {
        GetResult r{Status::Ok, 0};
        if (viaJs && js.get(out[0])) {
          r.count = 1;
        } else {
          if (viaJs) js.refreshIfStale();
          r = port->get(self, out.data(), viaJs ? 1 : max, -1);
        }
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
      Consumer poster(200 + pr);  // a JS thread has a consumer block even if it only posts
      cctest::JsMirror js(*port, poster);
      for (uint64_t seq = 0; seq < perProducer; ++seq) {
        Packet p = cctest::packet((uint64_t(pr) << 32) | seq, seq * 3, static_cast<uint32_t>(seq));
        if (jsMirror && pr % 2 == 1 && seq % 64 != 0) {
          // JS's post: the fast path, else the engine's post, as CompletionPort.post does.
          int s = js.post(p.key, p.bytes, p.overlapped);
          while (s != cctest::JsMirror::kOk) {
            if (s == cctest::JsMirror::kSlow) {
              js.refreshIfStale();
              const Status n = port->post(p);
              if (n == Status::Ok) break;
              if (n != Status::Full) { broken = true; return; }
            }
            std::this_thread::yield();  // Full: back-pressure
            s = js.post(p.key, p.bytes, p.overlapped);
          }
          continue;
        }
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

// JS and C++ on one port at once: producers and consumers of both languages (js_mirror.h).
TEST(stress_js_and_cpp_mixed_4_producers_4_consumers) {
  Outcome o;
  runStress(4, 4, 2, 32, 0, Port::kDefaultSpinNs, o, true);
  CHECK(o.ok);
}

TEST(stress_js_and_cpp_mixed_bounded_capacity_no_spin) {
  Outcome o;
  runStress(4, 3, 2, 16, 512, 0, o, true);
  CHECK(o.ok);
}
