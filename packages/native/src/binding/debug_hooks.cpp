#include "debug_hooks.h"

#include <mutex>
#include <thread>
#include <vector>

#include "../port/payload_table.h"
#include "handle_table.h"
#include "native_port.h"

namespace iocp {

namespace {

std::mutex gProducersMutex;
std::vector<std::thread> gProducers;  // joined by debugJoinNativeProducers

// debugCounts(): { ports: entries in the handle table, payloads: payloads in the ring or on
// their way to a consumer }.
Napi::Value debugCounts(const Napi::CallbackInfo& info) {
  Napi::Object counts = Napi::Object::New(info.Env());
  counts.Set("ports", static_cast<double>(HandleTable::instance().size()));
  counts.Set("payloads", static_cast<double>(PayloadTable::instance().live()));
  return counts;
}

// debugNativeProducers(port, firstProducer, producers, perProducer): starts `producers` C++
// threads; producer p posts perProducer packets with key p * 2^20 + seq, overlapped seq * 3,
// bytes seq, and an 8-byte payload (the key) on every 64th, through Port::post, retrying
// while the port is full. Returns at once.
Napi::Value debugNativeProducers(const Napi::CallbackInfo& info) {
  std::shared_ptr<Port> port = unwrapPort(info.Env(), info[0]);
  const uint32_t first = info[1].As<Napi::Number>().Uint32Value();
  const uint32_t producers = info[2].As<Napi::Number>().Uint32Value();
  const uint32_t perProducer = info[3].As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> lock(gProducersMutex);
  for (uint32_t p = first; p < first + producers; ++p) {
    gProducers.emplace_back([port, p, perProducer] {
      for (uint32_t seq = 0; seq < perProducer; ++seq) {
        Packet packet;
        packet.key = uint64_t(p) * (uint64_t(1) << 20) + seq;
        packet.overlapped = uint64_t(seq) * 3;
        packet.bytes = seq;
        if (seq % 64 == 0) packet.data = Payload::copyOf(&packet.key, sizeof packet.key);
        for (;;) {
          const Status status = port->post(packet);
          if (status == Status::Ok) break;
          if (status != Status::Full) {
            Payload::destroy(packet.data);
            return;
          }
          std::this_thread::yield();
        }
      }
    });
  }
  return info.Env().Undefined();
}

// debugJoinNativeProducers(): waits for every producer started so far (blocks this thread).
Napi::Value debugJoinNativeProducers(const Napi::CallbackInfo& info) {
  std::vector<std::thread> producers;
  {
    std::lock_guard<std::mutex> lock(gProducersMutex);
    producers.swap(gProducers);
  }
  for (std::thread& producer : producers) producer.join();
  return info.Env().Undefined();
}

}  // namespace

void defineDebugHooks(Napi::Env env, Napi::Object exports) {
  exports.Set("debugCounts", Napi::Function::New<debugCounts>(env, "debugCounts"));
  exports.Set("debugNativeProducers", Napi::Function::New<debugNativeProducers>(env, "debugNativeProducers"));
  exports.Set("debugJoinNativeProducers",
              Napi::Function::New<debugJoinNativeProducers>(env, "debugJoinNativeProducers"));
}

}  // namespace iocp
