#include "native_port.h"

#include <cmath>

#include "handle_table.h"
#include "thread_state.h"

namespace iocp {

namespace {

// Type tag: a NativePort method called on anything else is refused (napi_check_object_type_tag).
const napi_type_tag kNativePortTag = {0x696f63702d706f72ULL, 0x742d777261707065ULL};

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

}  // namespace

Napi::Function NativePort::define(Napi::Env env) {
  return DefineClass(env, "NativePort",
                     {
                         InstanceMethod<&NativePort::post>("post"),
                         InstanceMethod<&NativePort::postEx>("postEx"),
                         InstanceMethod<&NativePort::get>("get"),
                         InstanceMethod<&NativePort::getMany>("getMany"),
                         InstanceMethod<&NativePort::getManyInto>("getManyInto"),
                         InstanceMethod<&NativePort::getAsync>("getAsync"),
                         InstanceMethod<&NativePort::cancelAsync>("cancelAsync"),
                         InstanceMethod<&NativePort::blockingEnter>("blockingEnter"),
                         InstanceMethod<&NativePort::blockingLeave>("blockingLeave"),
                         InstanceMethod<&NativePort::close>("close"),
                         InstanceMethod<&NativePort::shutdown>("shutdown"),
                         InstanceMethod<&NativePort::stats>("stats"),
                         InstanceMethod<&NativePort::handle>("handle"),
                         InstanceMethod<&NativePort::recoverHeld>("recoverHeld"),
                         InstanceMethod<&NativePort::release>("release"),
                     });
}

NativePort::NativePort(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativePort>(info) {
  if (!threadState(info.Env()).consumer) {
    NAPI_THROW_VOID(Napi::Error::New(info.Env(), "@iocp/native: init() must be called first"));
  }
  napi_type_tag_object(info.Env(), info.This(), &kNativePortTag);
}

Napi::Object NativePort::wrap(Napi::Env env, std::shared_ptr<Port> port, uint64_t id) {
  Napi::Object object = threadState(env).portConstructor.New({});
  NativePort* self = Unwrap(object);
  self->port_ = std::move(port);
  self->id_ = id;
  return object;
}

Napi::Value NativePort::post(const Napi::CallbackInfo& info) {
  if (!port_) return Napi::Number::New(info.Env(), STATUS_CLOSED);
  Packet packet;
  packet.key = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  packet.bytes = info[1].As<Napi::Number>().Uint32Value();
  packet.overlapped = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
  return Napi::Number::New(info.Env(), statusCode(port_->post(packet)));
}

Napi::Value NativePort::postEx(const Napi::CallbackInfo& info) {
  if (!port_) return Napi::Number::New(info.Env(), STATUS_CLOSED);
  Packet packet;
  packet.key = toU64(info[0], FLAG_KEY_BIGINT, packet.flags);
  packet.bytes = info[1].As<Napi::Number>().Uint32Value();
  packet.overlapped = toU64(info[2], FLAG_OVERLAPPED_BIGINT, packet.flags);
  if (info[3].IsTypedArray()) {
    Napi::Uint8Array data = info[3].As<Napi::Uint8Array>();
    packet.data = Payload::copyOf(data.Data(), data.ByteLength());  // the one copy
  }
  const Status status = port_->post(packet);
  if (status != Status::Ok) Payload::destroy(packet.data);  // nothing was posted
  return Napi::Number::New(info.Env(), statusCode(status));
}

int32_t NativePort::receive(napi_env env, uint32_t* out, size_t max, int64_t timeoutMs) {
  if (!port_) return STATUS_CLOSED;
  ThreadState& state = threadState(env);
  Packet* batch = state.batchFor(max);
  const GetResult result = port_->get(*state.consumer, batch, max, timeoutMs);
  if (result.status != Status::Ok) return statusCode(result.status);
  if (!state.canRunJs(env)) {
    // This thread is being terminated while it was handed the packets: they go back to the
    // head of the queue rather than die with it.
    if (!port_->requeue(*state.consumer, batch, result.count, false)) {
      for (size_t i = 0; i < result.count; ++i) Payload::destroy(batch[i].data);
    }
    return STATUS_TERMINATING;
  }
  ThreadState::writePackets(out, batch, result.count);
  state.rememberBatch(result.count);
  return static_cast<int32_t>(result.count);
}

Napi::Value NativePort::get(const Napi::CallbackInfo& info) {
  ThreadState& state = threadState(info.Env());
  return Napi::Number::New(info.Env(), receive(info.Env(), state.scratch, 1, toTimeout(info[0])));
}

Napi::Value NativePort::getMany(const Napi::CallbackInfo& info) {
  ThreadState& state = threadState(info.Env());
  size_t max = info[0].As<Napi::Number>().Uint32Value();
  if (max > state.scratchPackets) max = state.scratchPackets;
  return Napi::Number::New(info.Env(), receive(info.Env(), state.scratch, max, toTimeout(info[1])));
}

Napi::Value NativePort::getManyInto(const Napi::CallbackInfo& info) {
  Napi::Uint32Array out = info[0].As<Napi::Uint32Array>();
  size_t max = info[1].As<Napi::Number>().Uint32Value();
  if (max > out.ElementLength() / PACKET_WORDS) max = out.ElementLength() / PACKET_WORDS;
  return Napi::Number::New(info.Env(), receive(info.Env(), out.Data(), max, toTimeout(info[2])));
}

Napi::Value NativePort::getAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!port_) return Napi::Number::New(env, STATUS_CLOSED);
  ThreadState& state = threadState(env);
  AsyncWaiter* waiter = state.acquireWaiter(port_);
  state.pending.emplace(waiter->id, waiter);
  const uint32_t id = waiter->id;
  if (port_->getAsync(*state.consumer, waiter->waiter) != Status::Ok) {
    state.pending.erase(id);
    state.recycleWaiter(waiter);
    return Napi::Number::New(env, STATUS_CLOSED);
  }
  state.updateRef(env);
  return Napi::Number::New(env, id);
}

Napi::Value NativePort::cancelAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThreadState& state = threadState(env);
  auto found = state.pending.find(info[0].As<Napi::Number>().Uint32Value());
  if (found == state.pending.end()) return Napi::Boolean::New(env, false);
  AsyncWaiter* waiter = found->second;
  if (!waiter->port->cancelAsync(waiter->waiter)) return Napi::Boolean::New(env, false);
  state.pending.erase(found);
  state.recycleWaiter(waiter);
  state.updateRef(env);
  return Napi::Boolean::New(env, true);
}

Napi::Value NativePort::blockingEnter(const Napi::CallbackInfo& info) {
  if (port_) port_->blockingEnter(*threadState(info.Env()).consumer);
  return info.Env().Undefined();
}

Napi::Value NativePort::blockingLeave(const Napi::CallbackInfo& info) {
  if (port_) port_->blockingLeave(*threadState(info.Env()).consumer);
  return info.Env().Undefined();
}

Napi::Value NativePort::close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!port_) return Napi::Array::New(env, 0);
  std::vector<Packet> remaining = port_->close();
  HandleTable::instance().remove(id_);
  return flatPackets(env, remaining, [](const Packet& p) { return p.data; });
}

Napi::Value NativePort::shutdown(const Napi::CallbackInfo& info) {
  if (!port_) return Napi::Number::New(info.Env(), STATUS_CLOSED);
  return Napi::Number::New(info.Env(), statusCode(port_->shutdown()));
}

Napi::Value NativePort::stats(const Napi::CallbackInfo& info) {
  Napi::Float64Array out = info[0].As<Napi::Float64Array>();
  double* values = out.Data();
  if (!port_) {
    for (size_t i = 0; i < 8; ++i) values[i] = 0;
    values[7] = 2;
    return info.Env().Undefined();
  }
  const PortStats s = port_->stats();
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

Napi::Value NativePort::handle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t pin = port_ ? HandleTable::instance().pin(id_) : 0;
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, static_cast<double>(id_)));
  pair.Set(1u, Napi::Number::New(env, static_cast<double>(pin)));
  return pair;
}

Napi::Value NativePort::recoverHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!port_) return Napi::Array::New(env, 0);
  const uint64_t threadId = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  std::vector<HeldPacket> held = port_->recoverHeld(threadId);
  return flatPackets(env, held, [](const HeldPacket&) -> Payload* { return nullptr; });
}

Napi::Value NativePort::release(const Napi::CallbackInfo& info) {
  if (port_) {
    port_->untie(*threadState(info.Env()).consumer);
    port_.reset();
  }
  return info.Env().Undefined();
}

}  // namespace iocp
