#include "native_port.h"

#include "handle_table.h"
#include "thread_state.h"

namespace iocp {

namespace {

// Type tag of the External. The hot functions rely on napi_get_value_external's own type check
// (the argument comes from @iocp/core); the others also check the tag.
const napi_type_tag kNativePortTag = {0x696f63702d706f72ULL, 0x742d657874726e6cULL};

NativePort* portOf(const Napi::CallbackInfo& info) {
  void* data = nullptr;
  napi_get_value_external(info.Env(), info[0], &data);
  return static_cast<NativePort*>(data);
}

NativePort* checkedPortOf(const Napi::CallbackInfo& info) {
  bool tagged = false;
  if (!info[0].IsExternal() ||
      napi_check_object_type_tag(info.Env(), info[0], &kNativePortTag, &tagged) != napi_ok || !tagged) {
    NAPI_THROW(Napi::TypeError::New(info.Env(), "@iocp/native: not a port"), nullptr);
  }
  return portOf(info);
}

ThreadState& stateOf(const Napi::CallbackInfo& info) {
  return *static_cast<ThreadState*>(info.Data());
}

uint64_t toU64(const Napi::Value& value, uint32_t bigintFlag, uint32_t& flags) {
  if (value.IsBigInt()) {
    bool lossless = false;
    flags |= bigintFlag;
    return value.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(value.As<Napi::Number>().DoubleValue());
}

int64_t toTimeout(const Napi::Value& value) {
  return static_cast<int64_t>(value.As<Napi::Number>().DoubleValue());
}

int32_t statusCode(Status status) {
  switch (status) {
    case Status::Ok: return 0;
    case Status::Timeout: return 0;
    case Status::Closed: return STATUS_CLOSED;
    case Status::Full: return STATUS_FULL;
  }
  return STATUS_CLOSED;
}

Napi::Value number(const Napi::CallbackInfo& info, double value) {
  return Napi::Number::New(info.Env(), value);
}

// close() and recoverHeld() answer with 7 entries per packet:
// keyLo, keyHi, ovLo, ovHi, bytes, flags, data (Uint8Array | undefined).
template <typename Item, typename DataOf>
Napi::Array flatPackets(Napi::Env env, const std::vector<Item>& packets, DataOf dataOf) {
  Napi::Array out = Napi::Array::New(env, packets.size() * 7);
  uint32_t at = 0;
  for (const Item& p : packets) {
    Payload* data = dataOf(p);
    out.Set(at++, Napi::Number::New(env, static_cast<uint32_t>(p.key)));
    out.Set(at++, Napi::Number::New(env, static_cast<uint32_t>(p.key >> 32)));
    out.Set(at++, Napi::Number::New(env, static_cast<uint32_t>(p.overlapped)));
    out.Set(at++, Napi::Number::New(env, static_cast<uint32_t>(p.overlapped >> 32)));
    out.Set(at++, Napi::Number::New(env, p.bytes));
    out.Set(at++, Napi::Number::New(env, p.flags | (data != nullptr ? FLAG_HAS_DATA : 0)));
    out.Set(at++, data != nullptr ? payloadToJs(env, data) : env.Undefined());
  }
  return out;
}

// The shared receive path of get/getMany/getManyInto: the count, or a status.
int32_t receive(napi_env env, ThreadState& state, NativePort& self, uint32_t* out, size_t max,
                int64_t timeoutMs) {
  if (!self.port) return STATUS_CLOSED;
  Packet* batch = state.batchFor(max);
  const GetResult result = self.port->get(*state.consumer, batch, max, timeoutMs);
  if (result.status != Status::Ok) return statusCode(result.status);
  if (!state.canRunJs(env)) {
    // This thread is being terminated while it was handed the packets: they go back to the
    // head of the queue rather than die with it.
    if (!self.port->requeue(*state.consumer, batch, result.count, false)) {
      for (size_t i = 0; i < result.count; ++i) Payload::destroy(batch[i].data);
    }
    return STATUS_TERMINATING;
  }
  ThreadState::writePackets(out, batch, result.count);
  state.rememberBatch(result.count);
  return static_cast<int32_t>(result.count);
}

// --- the functions; info[0] is the port's External -------------------------------------------

Napi::Value portPost(const Napi::CallbackInfo& info) {
  NativePort& self = *portOf(info);
  if (!self.port) return number(info, STATUS_CLOSED);
  Packet packet;
  packet.key = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  packet.bytes = info[2].As<Napi::Number>().Uint32Value();
  packet.overlapped = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  return number(info, statusCode(self.port->post(packet)));
}

Napi::Value portPostEx(const Napi::CallbackInfo& info) {
  NativePort& self = *portOf(info);
  if (!self.port) return number(info, STATUS_CLOSED);
  Packet packet;
  packet.key = toU64(info[1], FLAG_KEY_BIGINT, packet.flags);
  packet.bytes = info[2].As<Napi::Number>().Uint32Value();
  packet.overlapped = toU64(info[3], FLAG_OVERLAPPED_BIGINT, packet.flags);
  if (info[4].IsTypedArray()) {
    Napi::Uint8Array data = info[4].As<Napi::Uint8Array>();
    packet.data = Payload::copyOf(data.Data(), data.ByteLength());  // the one copy
  }
  const Status status = self.port->post(packet);
  if (status != Status::Ok) Payload::destroy(packet.data);  // nothing was posted
  return number(info, statusCode(status));
}

// (port, words: Uint32Array, count, data: Array<Uint8Array | undefined> | undefined): the
// packets in the batch layout, posted in order under one lock; returns how many were posted, or
// Closed. Payloads are copied (once) only for packets whose data entry is a Uint8Array.
Napi::Value portPostMany(const Napi::CallbackInfo& info) {
  NativePort& self = *portOf(info);
  if (!self.port) return number(info, STATUS_CLOSED);
  ThreadState& state = stateOf(info);
  const uint32_t* words = info[1].As<Napi::Uint32Array>().Data();
  const size_t count = info[2].As<Napi::Number>().Uint32Value();
  const bool withData = info[3].IsArray();
  Napi::Array data = withData ? info[3].As<Napi::Array>() : Napi::Array();
  Packet* packets = state.postScratch(count);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t* w = words + i * PACKET_WORDS;
    Packet& p = packets[i];
    p.key = uint64_t(w[0]) | (uint64_t(w[1]) << 32);
    p.overlapped = uint64_t(w[2]) | (uint64_t(w[3]) << 32);
    p.bytes = w[4];
    p.flags = w[5] & (FLAG_KEY_BIGINT | FLAG_OVERLAPPED_BIGINT);
    p.data = nullptr;
    if (withData && (w[5] & FLAG_HAS_DATA) != 0) {
      Napi::Value entry = data.Get(static_cast<uint32_t>(i));
      if (entry.IsTypedArray()) {
        Napi::Uint8Array bytes = entry.As<Napi::Uint8Array>();
        p.data = Payload::copyOf(bytes.Data(), bytes.ByteLength());
      }
    }
  }
  const Port::PostManyResult result = self.port->postMany(packets, count);
  for (size_t i = result.posted; i < count; ++i) Payload::destroy(packets[i].data);  // not posted
  if (result.status == Status::Closed) return number(info, STATUS_CLOSED);
  return number(info, static_cast<double>(result.posted));
}

Napi::Value portGet(const Napi::CallbackInfo& info) {
  ThreadState& state = stateOf(info);
  return number(info, receive(info.Env(), state, *portOf(info), state.scratch, 1, toTimeout(info[1])));
}

Napi::Value portGetMany(const Napi::CallbackInfo& info) {
  ThreadState& state = stateOf(info);
  size_t max = info[1].As<Napi::Number>().Uint32Value();
  if (max > state.scratchPackets) max = state.scratchPackets;
  return number(info, receive(info.Env(), state, *portOf(info), state.scratch, max, toTimeout(info[2])));
}

Napi::Value portGetManyInto(const Napi::CallbackInfo& info) {
  Napi::Uint32Array out = info[1].As<Napi::Uint32Array>();
  size_t max = info[2].As<Napi::Number>().Uint32Value();
  if (max > out.ElementLength() / PACKET_WORDS) max = out.ElementLength() / PACKET_WORDS;
  return number(info, receive(info.Env(), stateOf(info), *portOf(info), out.Data(), max, toTimeout(info[3])));
}

Napi::Value portGetAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort& self = *portOf(info);
  if (!self.port) return number(info, STATUS_CLOSED);
  ThreadState& state = stateOf(info);
  AsyncWaiter* waiter = state.acquireWaiter(self.port);
  state.pending.emplace(waiter->id, waiter);
  const uint32_t id = waiter->id;
  if (self.port->getAsync(*state.consumer, waiter->waiter) != Status::Ok) {
    state.pending.erase(id);
    state.recycleWaiter(waiter);
    return number(info, STATUS_CLOSED);
  }
  state.updateRef(env);
  return number(info, id);
}

Napi::Value portCancelAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThreadState& state = stateOf(info);
  auto found = state.pending.find(info[1].As<Napi::Number>().Uint32Value());
  if (found == state.pending.end()) return Napi::Boolean::New(env, false);
  AsyncWaiter* waiter = found->second;
  if (!waiter->port->cancelAsync(waiter->waiter)) return Napi::Boolean::New(env, false);
  state.pending.erase(found);
  state.recycleWaiter(waiter);
  state.updateRef(env);
  return Napi::Boolean::New(env, true);
}

Napi::Value portBlockingEnter(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  if (self != nullptr && self->port) self->port->blockingEnter(*stateOf(info).consumer);
  return info.Env().Undefined();
}

Napi::Value portBlockingLeave(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  if (self != nullptr && self->port) self->port->blockingLeave(*stateOf(info).consumer);
  return info.Env().Undefined();
}

Napi::Value portClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  if (self == nullptr || !self->port) return Napi::Array::New(env, 0);
  std::vector<Packet> remaining = self->port->close();
  HandleTable::instance().remove(self->id);
  return flatPackets(env, remaining, [](const Packet& p) { return p.data; });
}

Napi::Value portShutdown(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  if (self == nullptr || !self->port) return number(info, STATUS_CLOSED);
  return number(info, statusCode(self->port->shutdown()));
}

Napi::Value portStats(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  if (self == nullptr) return info.Env().Undefined();
  double* values = info[1].As<Napi::Float64Array>().Data();
  if (!self->port) {
    for (size_t i = 0; i < 8; ++i) values[i] = 0;
    values[7] = 2;
    return info.Env().Undefined();
  }
  const PortStats s = self->port->stats();
  values[0] = static_cast<double>(s.queued);
  values[1] = static_cast<double>(s.running);
  values[2] = static_cast<double>(s.waiting);
  values[3] = static_cast<double>(s.posted);
  values[4] = static_cast<double>(s.dequeued);
  values[5] = static_cast<double>(s.concurrency);
  values[6] = static_cast<double>(s.capacity);
  values[7] = s.state;
  return info.Env().Undefined();
}

Napi::Value portHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  if (self == nullptr) return env.Undefined();
  const uint64_t pin = self->port ? HandleTable::instance().pin(self->id) : 0;
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, static_cast<double>(self->id)));
  pair.Set(1u, Napi::Number::New(env, static_cast<double>(pin)));
  return pair;
}

Napi::Value portRecoverHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  if (self == nullptr || !self->port) return Napi::Array::New(env, 0);
  const uint64_t threadId = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  std::vector<HeldPacket> held = self->port->recoverHeld(threadId);
  return flatPackets(env, held, [](const HeldPacket&) -> Payload* { return nullptr; });
}

Napi::Value portRelease(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  if (self != nullptr && self->port) {
    self->port->untie(*stateOf(info).consumer);
    self->port.reset();
  }
  return info.Env().Undefined();
}

}  // namespace

Napi::Value wrapPort(Napi::Env env, std::shared_ptr<Port> port, uint64_t id) {
  NativePort* self = new NativePort{std::move(port), id};
  Napi::External<NativePort> external =
      Napi::External<NativePort>::New(env, self, [](Napi::Env, NativePort* gone) { delete gone; });
  napi_type_tag_object(env, external, &kNativePortTag);
  return external;
}

void definePortFunctions(Napi::Env env, Napi::Object exports, ThreadState* state) {
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  static const Entry entries[] = {
      {"portPost", portPost},
      {"portPostEx", portPostEx},
      {"portPostMany", portPostMany},
      {"portGet", portGet},
      {"portGetMany", portGetMany},
      {"portGetManyInto", portGetManyInto},
      {"portGetAsync", portGetAsync},
      {"portCancelAsync", portCancelAsync},
      {"portBlockingEnter", portBlockingEnter},
      {"portBlockingLeave", portBlockingLeave},
      {"portClose", portClose},
      {"portShutdown", portShutdown},
      {"portStats", portStats},
      {"portHandle", portHandle},
      {"portRecoverHeld", portRecoverHeld},
      {"portRelease", portRelease},
  };
  for (const Entry& entry : entries) {
    exports.Set(entry.name, Napi::Function::New(env, entry.fn, entry.name, state));
  }
}

}  // namespace iocp
