// The C++ driver: the same completion-port engine that @iocp/native wraps, driven from C++
// with no Node and no binding in the way. Whatever the JS rows of @iocp/bench reach, this is
// the ceiling they are measured against.
//
// Each case mirrors a JS case of the bench, packet for packet:
//   single.get      one thread: post one packet, get it back                 (scenario 1)
//   single.batch    one thread: post 256 packets one by one, get them in one call (scenario 1)
//   single.postMany one thread: postMany 256 packets, get them in one call     (scenario 1)
//   fanout.get.C    main posts N packets; C consumer threads get one at a time (scenario 2)
//   fanout.batch.C  the same, batched: postMany of 256, gets of up to 256      (scenario 2)
//   workers.get     2 producer threads -> 2 consumer threads, one at a time    (scenario 2)
//   workers.batch   the same, batched both ways                                (scenario 2)
//   pingpong        two threads, two ports: post to one, wait on the other     (scenario 3)
//   memory          bytes of resident memory per queued packet (10^6 queued)   (scenario 5)
// Consumers stop on a STOP packet (key 2^64-1) posted after the data, as the JS consumers do;
// every packet is counted and its key summed, and a case that loses one fails the program.
//
// Usage: limit [--quick] [--runs R] [--seconds S] [--max-packets M] [--case NAME[,NAME...]]
//   (--case takes prefixes: --case fanout). Each case runs once to warm up (discarded), which also
//   gives its rate; every timed run is then sized to last about S seconds (default 0.12 with
//   --quick, else 0.5), like the JS rows, and a cross-thread run to at most M packets (default
//   2*10^6 with --quick, else 10^7: a producer that outruns its consumers queues them all).
// Prints one JSON object on stdout:
//   {"engine":..., "compiler":..., "runs":R, "results":[{"id":..., "unit":..., "runs":[...],
//    "p50us":..., "p99us":...}]}
// Exit status 1 (with a message on stderr) if a case loses or duplicates a packet.

#include "../../native/src/port/port.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using iocp::Consumer;
using iocp::GetResult;
using iocp::Packet;
using iocp::Port;
using iocp::Status;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kStop = UINT64_MAX;
constexpr size_t kBatch = 256;

constexpr uint64_t kMemoryPackets = 1000000;
constexpr uint64_t kMaxSingle = 1ull << 31;  // keeps key sums exact

[[noreturn]] void fail(const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  std::fputs("limit: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::exit(1);
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Packet packetOf(uint64_t key) {
  Packet packet;
  packet.key = key;
  return packet;
}

void post(Port& port, uint64_t key) {
  if (port.post(packetOf(key)) != Status::Ok) fail("post failed");
}

void postMany(Port& port, const Packet* packets, size_t count) {
  const Port::PostManyResult r = port.postMany(packets, count);
  if (r.status != Status::Ok || r.posted != count) fail("postMany failed");
}

// Posts keys first, first + step, ... below n: one post each (batch == 1), or postMany of
// `batch` packets at a time.
void postKeys(Port& port, uint64_t first, uint64_t step, uint64_t n, size_t batch) {
  if (batch <= 1) {
    for (uint64_t key = first; key < n; key += step) post(port, key);
    return;
  }
  std::vector<Packet> packets(batch);
  size_t fill = 0;
  for (uint64_t key = first; key < n; key += step) {
    packets[fill++].key = key;
    if (fill == batch) {
      postMany(port, packets.data(), fill);
      fill = 0;
    }
  }
  if (fill > 0) postMany(port, packets.data(), fill);
}

std::shared_ptr<Port> makePort(uint32_t concurrency) { return std::make_shared<Port>(concurrency, 0); }

// What one consumer thread saw in a run.
struct Tally {
  uint64_t count = 0;
  uint64_t sum = 0;
};

void checkTallies(const char* id, const std::vector<Tally>& tallies, uint64_t n) {
  uint64_t count = 0, sum = 0;
  for (const Tally& t : tallies) {
    count += t.count;
    sum += t.sum;
  }
  const uint64_t expected = n * (n - 1) / 2;  // keys 0 .. n-1, each once
  if (count != n || sum != expected) {
    fail("%s: %llu of %llu packets arrived (key sum %llu, expected %llu)", id,
         static_cast<unsigned long long>(count), static_cast<unsigned long long>(n),
         static_cast<unsigned long long>(sum), static_cast<unsigned long long>(expected));
  }
}

// --- scenario 1: one thread -----------------------------------------------------------------

double singleGet(uint64_t n) {
  auto port = makePort(1);
  Consumer self(1);
  Packet out;
  const auto start = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    post(*port, i);
    const GetResult r = port->get(self, &out, 1, -1);
    if (r.status != Status::Ok || r.count != 1 || out.key != i) fail("single.get: packet %llu lost", static_cast<unsigned long long>(i));
  }
  return static_cast<double>(n) / secondsSince(start);
}

double singleBatch(uint64_t n, bool many) {
  auto port = makePort(1);
  Consumer self(1);
  std::vector<Packet> out(kBatch);
  std::vector<Packet> in(kBatch);
  const uint64_t rounds = n / kBatch;
  uint64_t next = 0;
  const auto start = Clock::now();
  for (uint64_t r = 0; r < rounds; ++r) {
    if (many) {
      for (size_t i = 0; i < kBatch; ++i) in[i].key = r * kBatch + i;
      postMany(*port, in.data(), kBatch);
    } else {
      for (size_t i = 0; i < kBatch; ++i) post(*port, r * kBatch + i);
    }
    size_t got = 0;
    while (got < kBatch) {
      const GetResult g = port->get(self, out.data(), kBatch - got, -1);
      if (g.status != Status::Ok) fail("single.batch: get failed");
      for (size_t i = 0; i < g.count; ++i) {
        if (out[i].key != next) fail("single.batch: packet %llu lost", static_cast<unsigned long long>(next));
        ++next;
      }
      got += g.count;
    }
  }
  return static_cast<double>(rounds * kBatch) / secondsSince(start);
}

// --- scenario 2: producers -> consumer threads ----------------------------------------------

// Takes packets until a STOP; a batched consumer that takes several STOPs gives the extra ones
// back to the port, so every consumer ends on exactly one.
void consume(Port& port, uint64_t threadId, size_t max, Tally& tally) {
  Consumer self(threadId);
  std::vector<Packet> out(max);
  for (;;) {
    const GetResult r = port.get(self, out.data(), max, -1);
    if (r.status != Status::Ok) fail("consumer: get failed");
    unsigned stops = 0;
    for (size_t i = 0; i < r.count; ++i) {
      if (out[i].key == kStop) {
        ++stops;
      } else {
        ++tally.count;
        tally.sum += out[i].key;
      }
    }
    if (stops > 0) {
      for (unsigned s = 1; s < stops; ++s) post(port, kStop);
      return;
    }
  }
}

// The calling thread posts keys 0 .. n-1 (in postMany batches of `max` when max > 1) and then
// one STOP per consumer.
double fanout(const char* id, unsigned consumers, size_t max, uint64_t n) {
  auto port = makePort(consumers);
  std::vector<Tally> tallies(consumers);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (unsigned c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] { consume(*port, 10 + c, max, tallies[c]); });
  }
  postKeys(*port, 0, 1, n, max);
  for (unsigned c = 0; c < consumers; ++c) post(*port, kStop);
  for (auto& t : threads) t.join();
  const double seconds = secondsSince(start);
  checkTallies(id, tallies, n);
  return static_cast<double>(n) / seconds;
}

// `producers` threads post keys p, p + P, p + 2P, ... below n (batched like fanout); the last
// one to finish posts the STOPs.
double workers(const char* id, unsigned producers, unsigned consumers, size_t max, uint64_t n) {
  auto port = makePort(consumers);
  std::vector<Tally> tallies(consumers);
  std::atomic<unsigned> finished{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] { consume(*port, 10 + c, max, tallies[c]); });
  }
  for (unsigned p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      postKeys(*port, p, producers, n, max);
      if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == producers) {
        for (unsigned c = 0; c < consumers; ++c) post(*port, kStop);
      }
    });
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  const double seconds = secondsSince(start);
  checkTallies(id, tallies, n);
  return static_cast<double>(n) / seconds;
}

// --- scenario 3: ping-pong --------------------------------------------------------------------

struct PingPong {
  double tripsPerSecond;
  std::vector<double> latencyUs;
};

PingPong pingpong(uint64_t trips) {
  auto ping = makePort(1);  // ping thread -> pong thread
  auto pong = makePort(1);  // pong thread -> ping thread
  PingPong result;
  result.latencyUs.resize(trips);
  std::thread echo([&] {
    Consumer self(20);
    Packet in;
    for (;;) {
      if (ping->get(self, &in, 1, -1).status != Status::Ok) fail("pingpong: get failed");
      if (in.key == kStop) return;
      if (pong->post(in) != Status::Ok) fail("pingpong: post failed");
    }
  });
  Consumer self(21);
  Packet in;
  const auto start = Clock::now();
  for (uint64_t i = 0; i < trips; ++i) {
    const auto sent = Clock::now();
    post(*ping, i);
    if (pong->get(self, &in, 1, -1).status != Status::Ok || in.key != i) fail("pingpong: trip %llu lost", static_cast<unsigned long long>(i));
    result.latencyUs[i] = std::chrono::duration<double, std::micro>(Clock::now() - sent).count();
  }
  result.tripsPerSecond = static_cast<double>(trips) / secondsSince(start);
  post(*ping, kStop);
  echo.join();
  return result;
}

// --- scenario 5: memory -------------------------------------------------------------------------

// Resident set size in bytes (Linux: /proc/self/statm; elsewhere 0, and the case is skipped).
double residentBytes() {
  std::ifstream statm("/proc/self/statm");
  unsigned long long size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double bytesPerPacket(uint64_t n) {
  const double before = residentBytes();
  if (before == 0) return -1;
  auto port = makePort(1);
  for (uint64_t i = 0; i < n; ++i) post(*port, i);
  const double after = residentBytes();
  if (port->stats().queued != n) fail("memory: %llu packets queued, expected %llu", static_cast<unsigned long long>(port->stats().queued), static_cast<unsigned long long>(n));
  port->close();
  return (after - before) / static_cast<double>(n);
}

// --- output ---------------------------------------------------------------------------------------

struct Result {
  std::string id;
  std::string unit;
  std::vector<double> runs;
  std::vector<double> latencyUs;  // ping-pong only: every trip of every run
};

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double at = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (at - static_cast<double>(lo));
}

void printJson(const std::vector<Result>& results, int runs) {
  std::printf("{\"engine\":\"iocp::Port (packages/native/src/port)\",\"compiler\":\"%s\",\"runs\":%d,\"results\":[",
#if defined(__clang__)
              "clang " __clang_version__,
#elif defined(__GNUC__)
              "g++ " __VERSION__,
#else
              "unknown",
#endif
              runs);
  for (size_t r = 0; r < results.size(); ++r) {
    const Result& result = results[r];
    std::printf("%s{\"id\":\"%s\",\"unit\":\"%s\",\"runs\":[", r == 0 ? "" : ",", result.id.c_str(),
                result.unit.c_str());
    for (size_t i = 0; i < result.runs.size(); ++i) std::printf("%s%.6g", i == 0 ? "" : ",", result.runs[i]);
    std::printf("]");
    if (!result.latencyUs.empty()) {
      std::printf(",\"p50us\":%.4g,\"p99us\":%.4g", percentile(result.latencyUs, 0.50),
                  percentile(result.latencyUs, 0.99));
    }
    std::printf("}");
  }
  std::printf("]}\n");
}

bool wanted(const std::vector<std::string>& filters, const std::string& id) {
  if (filters.empty()) return true;
  for (const std::string& f : filters) {
    if (id.compare(0, f.size(), f) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int runs = 0;
  double seconds = 0;
  uint64_t maxPackets = 0;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
      if (runs < 1) fail("--runs must be a positive integer");
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
      if (!(seconds > 0)) fail("--seconds must be a positive number");
    } else if (arg == "--max-packets" && i + 1 < argc) {
      maxPackets = std::strtoull(argv[++i], nullptr, 10);
      if (maxPackets < 1000) fail("--max-packets must be at least 1000");
    } else if (arg == "--case" && i + 1 < argc) {
      std::string list = argv[++i];
      size_t from = 0;
      while (from <= list.size()) {
        const size_t comma = std::min(list.find(',', from), list.size());
        if (comma > from) filters.push_back(list.substr(from, comma - from));
        from = comma + 1;
      }
    } else {
      fail("unknown argument '%s' (usage: limit [--quick] [--runs R] [--seconds S] [--max-packets M] [--case NAME[,NAME...]])", arg.c_str());
    }
  }
  if (runs == 0) runs = quick ? 3 : 7;
  if (seconds <= 0) seconds = quick ? 0.12 : 0.5;
  if (maxPackets == 0) maxPackets = quick ? 2000000 : 10000000;

  std::vector<Result> results;
  // Warm-up run of `first` (pages in the code, grows the rings, gives the rate), then `runs`
  // runs sized to about `seconds` each.
  auto sized = [&](uint64_t first, uint64_t rate, uint64_t most) {
    const double n = static_cast<double>(rate) * seconds;
    return std::max<uint64_t>(first, std::min<uint64_t>(most, static_cast<uint64_t>(n)));
  };
  auto measure = [&](const std::string& id, const char* unit, uint64_t first, auto&& once) {
    if (!wanted(filters, id)) return;
    Result result{id, unit, {}, {}};
    const uint64_t most = id.compare(0, 7, "single.") == 0 ? kMaxSingle : maxPackets;
    const uint64_t n = sized(first, static_cast<uint64_t>(once(first)), most);
    for (int r = 0; r < runs; ++r) result.runs.push_back(once(n));
    results.push_back(std::move(result));
  };

  if (wanted(filters, "memory")) {
    // First, and once per process: a later run would reuse pages that other cases freed.
    const double bytes = bytesPerPacket(kMemoryPackets);
    if (bytes >= 0) results.push_back(Result{"memory", "bytes/packet", {bytes}, {}});
  }
  measure("single.get", "packets/s", 1 << 20, [&](uint64_t n) { return singleGet(n); });
  measure("single.batch", "packets/s", 1 << 20, [&](uint64_t n) { return singleBatch(n, false); });
  measure("single.postMany", "packets/s", 1 << 20, [&](uint64_t n) { return singleBatch(n, true); });
  for (unsigned consumers : {1u, 2u}) {
    const std::string get = "fanout.get." + std::to_string(consumers);
    const std::string batch = "fanout.batch." + std::to_string(consumers);
    measure(get, "packets/s", 100000, [&](uint64_t n) { return fanout(get.c_str(), consumers, 1, n); });
    measure(batch, "packets/s", 100000, [&](uint64_t n) { return fanout(batch.c_str(), consumers, kBatch, n); });
  }
  measure("workers.get", "packets/s", 100000, [&](uint64_t n) { return workers("workers.get", 2, 2, 1, n); });
  measure("workers.batch", "packets/s", 100000, [&](uint64_t n) { return workers("workers.batch", 2, 2, kBatch, n); });
  if (wanted(filters, "pingpong")) {
    Result result{"pingpong", "trips/s", {}, {}};
    const uint64_t trips = sized(2000, static_cast<uint64_t>(pingpong(2000).tripsPerSecond), maxPackets);
    for (int r = 0; r < runs; ++r) {
      PingPong p = pingpong(trips);
      result.runs.push_back(p.tripsPerSecond);
      result.latencyUs.insert(result.latencyUs.end(), p.latencyUs.begin(), p.latencyUs.end());
    }
    results.push_back(std::move(result));
  }
  printJson(results, runs);
  return 0;
}
