#include "native_port.h"

#include <new>

#include "handle_table.h"
#include "raw_args.h"
#include "thread_state.h"

namespace iocp {

namespace {

using raw::doubleOf;
using raw::int32;
using raw::u64Of;
using raw::uint32Of;

// Type tag of the External. The hot functions rely on napi_get_value_external's own type check
// (the argument comes from @iocp/core); the others also check the tag.
const napi_type_tag kNativePortTag = {0x696f63702d706f72ULL, 0x742d657874726e6cULL};

// The port behind `value`, or nullptr with a TypeError pending: every function checks the tag,
// so a forged value (any other External, an object) fails closed instead of crashing.
NativePort* taggedPort(napi_env env, napi_value value) {
  bool tagged = false;
  void* data = nullptr;
  if (napi_check_object_type_tag(env, value, &kNativePortTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, &data) != napi_ok || data == nullptr) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "@iocp/native: not a port");
    return nullptr;
  }
  return static_cast<NativePort*>(data);
}

NativePort* checkedPortOf(const Napi::CallbackInfo& info) {
  NativePort* self = taggedPort(info.Env(), info[0]);
  if (self == nullptr) throw info.Env().GetAndClearPendingException();
  return self;
}

ThreadState& stateOf(const Napi::CallbackInfo& info) {
  return *static_cast<ThreadState*>(info.Data());
}

int32_t statusCode(Status status) {
  switch (status) {
    case Status::Ok: return 0;
    case Status::Timeout: return 0;
    case Status::Closed: return STATUS_CLOSED;
    case Status::Full: return STATUS_FULL;
    case Status::Abandoned: return STATUS_TERMINATING;
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
  if (max == 0) return 0;  // @iocp/core never asks for none; the engine requires max >= 1
  Packet* batch;
  GetResult result;
  try {
    batch = state.batchFor(max);  // grows before anything is taken
    result = self.port->get(*state.consumer, batch, max, timeoutMs);
  } catch (const std::bad_alloc&) {
    napi_throw_range_error(env, "ERR_OUT_OF_MEMORY", "@iocp/native: no memory for the batch");
    return STATUS_EXCEPTION;
  }
  if (result.status != Status::Ok) return statusCode(result.status);
  if (result.slept && !state.canRunJs(env)) {
    // This thread was asleep in get() when worker.terminate() began, and was then handed the
    // packets: they go back to the head of the queue rather than die with it. (A thread that
    // took queued packets without sleeping was running JS a moment ago; a terminate that lands
    // now would interrupt the JS that follows anyway, so the packets' safety there is the held
    // record, which recoverHeld() hands to a pool (without payloads: those were the thread's).
    // Probing costs ~200 instructions a call.)
    if (self.port->requeue(*state.consumer, batch, result.count, false) != Status::Ok) {
      for (size_t i = 0; i < result.count; ++i) Payload::destroy(batch[i].data);
    }
    return STATUS_TERMINATING;
  }
  ThreadState::writePackets(out, batch, result.count);
  state.rememberBatch(result.count);
  return static_cast<int32_t>(result.count);
}

// --- the hot functions, in raw Node-API ------------------------------------------------------
// node-addon-api's CallbackInfo and Napi::Value wrappers cost more per call than the engine's
// post and get (callgrind), so the functions on the packet path read their arguments with
// one napi_get_cb_info and answer with a small integer. argv[0] is the port's External.

template <size_t N>
struct RawCall {
  napi_value argv[N];
  ThreadState* state = nullptr;
  NativePort* self = nullptr;

  RawCall(napi_env env, napi_callback_info info) {
    size_t argc = N;
    void* data = nullptr;
    napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
    state = static_cast<ThreadState*>(data);
    self = taggedPort(env, argv[0]);  // nullptr: a TypeError is pending, return at once
  }
  bool ok() const { return self != nullptr; }
};

uint32_t* uint32ArrayOf(napi_env env, napi_value value, size_t* length) {
  napi_typedarray_type type;
  void* data = nullptr;
  napi_get_typedarray_info(env, value, &type, length, &data, nullptr, nullptr);
  return static_cast<uint32_t*>(data);
}

// Port::post, with running out of memory (the queue could not grow) turned into a JS error
// instead of an exception escaping a Node-API callback. false: a JS exception is pending.
bool postOrThrow(napi_env env, Port& port, const Packet& packet, Status& status) {
  try {
    status = port.post(packet);
    return true;
  } catch (const std::bad_alloc&) {
    napi_throw_range_error(env, "ERR_OUT_OF_MEMORY", "@iocp/native: the queue could not grow");
    return false;
  }
}

napi_value rawPortPost(napi_env env, napi_callback_info info) {
  RawCall<4> call(env, info);
  if (!call.ok()) return nullptr;
  Packet packet;
  packet.key = static_cast<uint64_t>(doubleOf(env, call.argv[1]));
  packet.bytes = uint32Of(env, call.argv[2]);
  packet.overlapped = static_cast<uint64_t>(doubleOf(env, call.argv[3]));
  Status status;
  if (!postOrThrow(env, *call.self->port, packet, status)) return nullptr;
  return int32(env, statusCode(status));
}

napi_value rawPortGet(napi_env env, napi_callback_info info) {
  RawCall<2> call(env, info);
  if (!call.ok()) return nullptr;
  const int64_t timeoutMs = static_cast<int64_t>(doubleOf(env, call.argv[1]));
  const int32_t result = receive(env, *call.state, *call.self, call.state->scratch, 1, timeoutMs);
  return result == STATUS_EXCEPTION ? nullptr : int32(env, result);
}

napi_value rawPortGetMany(napi_env env, napi_callback_info info) {
  RawCall<3> call(env, info);
  if (!call.ok()) return nullptr;
  size_t max = uint32Of(env, call.argv[1]);
  if (max > call.state->scratchPackets) max = call.state->scratchPackets;
  const int64_t timeoutMs = static_cast<int64_t>(doubleOf(env, call.argv[2]));
  const int32_t result = receive(env, *call.state, *call.self, call.state->scratch, max, timeoutMs);
  return result == STATUS_EXCEPTION ? nullptr : int32(env, result);
}

napi_value rawPortGetManyInto(napi_env env, napi_callback_info info) {
  RawCall<4> call(env, info);
  if (!call.ok()) return nullptr;
  size_t length = 0;
  uint32_t* out = uint32ArrayOf(env, call.argv[1], &length);
  size_t max = uint32Of(env, call.argv[2]);
  if (max > length / PACKET_WORDS) max = length / PACKET_WORDS;
  const int64_t timeoutMs = static_cast<int64_t>(doubleOf(env, call.argv[3]));
  const int32_t result = receive(env, *call.state, *call.self, out, max, timeoutMs);
  return result == STATUS_EXCEPTION ? nullptr : int32(env, result);
}

// (port, key: number | bigint, bytes, overlapped: number | bigint, data: Uint8Array | undefined)
napi_value rawPortPostEx(napi_env env, napi_callback_info info) {
  RawCall<5> call(env, info);
  if (!call.ok()) return nullptr;
  Packet packet;
  packet.key = u64Of(env, call.argv[1], FLAG_KEY_BIGINT, packet.flags);
  packet.bytes = uint32Of(env, call.argv[2]);
  packet.overlapped = u64Of(env, call.argv[3], FLAG_OVERLAPPED_BIGINT, packet.flags);
  size_t length = 0;
  void* source = nullptr;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, call.argv[4], &type, &length, &source, nullptr, nullptr) == napi_ok) {
    try {
      packet.data = Payload::copyOf(source, length);  // the one copy (a Uint8Array: length in bytes)
    } catch (const std::bad_alloc&) {
      napi_throw_range_error(env, "ERR_OUT_OF_MEMORY", "@iocp/native: no memory for the payload");
      return nullptr;
    }
  }
  Status status;
  if (!postOrThrow(env, *call.self->port, packet, status)) {
    Payload::destroy(packet.data);
    return nullptr;
  }
  if (status != Status::Ok) Payload::destroy(packet.data);  // nothing was posted
  return int32(env, statusCode(status));
}

// (port, words: Uint32Array, count, data: Array<Uint8Array | undefined> | undefined): the
// packets in the batch layout, posted in order under one lock; returns how many were posted, or
// Closed. Payloads are copied (once) only for packets whose data entry is a Uint8Array.
napi_value rawPortPostMany(napi_env env, napi_callback_info info) {
  RawCall<4> call(env, info);
  if (!call.ok()) return nullptr;
  size_t length = 0;
  const uint32_t* words = uint32ArrayOf(env, call.argv[1], &length);
  size_t count = uint32Of(env, call.argv[2]);
  if (count > length / PACKET_WORDS) count = length / PACKET_WORDS;
  bool withData = false;
  napi_is_array(env, call.argv[3], &withData);
  Packet* packets;
  try {
    packets = call.state->postScratch(count);
  } catch (const std::bad_alloc&) {
    napi_throw_range_error(env, "ERR_OUT_OF_MEMORY", "@iocp/native: no memory for the batch");
    return nullptr;
  }
  for (size_t i = 0; i < count; ++i) {
    const uint32_t* w = words + i * PACKET_WORDS;
    Packet& p = packets[i];
    p.key = uint64_t(w[0]) | (uint64_t(w[1]) << 32);
    p.overlapped = uint64_t(w[2]) | (uint64_t(w[3]) << 32);
    p.bytes = w[4];
    p.flags = w[5] & (FLAG_KEY_BIGINT | FLAG_OVERLAPPED_BIGINT);
    p.data = nullptr;
    if (withData && (w[5] & FLAG_HAS_DATA) != 0) {
      napi_value entry;
      bool isTyped = false;
      napi_get_element(env, call.argv[3], static_cast<uint32_t>(i), &entry);
      napi_is_typedarray(env, entry, &isTyped);
      if (isTyped) {
        size_t bytes = 0;
        void* source = nullptr;
        napi_typedarray_type type;
        napi_get_typedarray_info(env, entry, &type, &bytes, &source, nullptr, nullptr);
        try {
          p.data = Payload::copyOf(source, bytes);  // Uint8Array: length == byte length
        } catch (const std::bad_alloc&) {
          for (size_t j = 0; j < i; ++j) Payload::destroy(packets[j].data);  // nothing posted
          napi_throw_range_error(env, "ERR_OUT_OF_MEMORY", "@iocp/native: no memory for a payload");
          return nullptr;
        }
      }
    }
  }
  const Port::PostManyResult result = call.self->port->postMany(packets, count);
  for (size_t i = result.posted; i < count; ++i) Payload::destroy(packets[i].data);  // not posted
  if (result.status == Status::Closed) return int32(env, STATUS_CLOSED);
  return int32(env, static_cast<int32_t>(result.posted));
}

// --- the other functions (node-addon-api); info[0] is the port's External ---------------------

Napi::Value portGetAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort& self = *checkedPortOf(info);
  ThreadState& state = stateOf(info);
  AsyncWaiter* waiter;
  try {
    waiter = state.acquireWaiter(self.port);
    state.pending.emplace(waiter->id, waiter);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "@iocp/native: no memory for the waiter");
  }
  const uint32_t id = waiter->id;
  Status status;
  try {
    status = self.port->getAsync(*state.consumer, waiter->waiter);
  } catch (const std::bad_alloc&) {
    state.pending.erase(id);
    state.recycleWaiter(waiter);
    throw Napi::RangeError::New(env, "@iocp/native: no memory for the waiter");
  }
  if (status != Status::Ok) {
    state.pending.erase(id);
    state.recycleWaiter(waiter);
    return number(info, STATUS_CLOSED);
  }
  state.updateRef(env);
  return number(info, id);
}

Napi::Value portCancelAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkedPortOf(info);
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
  checkedPortOf(info)->port->blockingEnter(*stateOf(info).consumer);
  return info.Env().Undefined();
}

Napi::Value portBlockingLeave(const Napi::CallbackInfo& info) {
  checkedPortOf(info)->port->blockingLeave(*stateOf(info).consumer);
  return info.Env().Undefined();
}

Napi::Value portClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  std::vector<Packet> remaining = self->port->close();
  HandleTable::instance().remove(self->id);
  return flatPackets(env, remaining, [](const Packet& p) { return p.data; });
}

Napi::Value portShutdown(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  return number(info, statusCode(self->port->shutdown()));
}

Napi::Value portStats(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  double* values = info[1].As<Napi::Float64Array>().Data();
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
  const uint64_t pin = HandleTable::instance().pin(self->id);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, static_cast<double>(self->id)));
  pair.Set(1u, Napi::Number::New(env, static_cast<double>(pin)));
  return pair;
}

Napi::Value portRecoverHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  const uint64_t threadId = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  std::vector<HeldPacket> held = self->port->recoverHeld(threadId);
  return flatPackets(env, held, [](const HeldPacket&) -> Payload* { return nullptr; });
}

// The port's control block, as an ArrayBuffer JS views as Int32Array/Uint32Array (see
// shared_layout.h). The buffer holds a reference to the block, so the memory lives as long as
// any thread can still reach it.
Napi::Value portControl(const Napi::CallbackInfo& info) {
  NativePort* self = checkedPortOf(info);
  stateOf(info).viewed(self->port);
  return sharedBlockToJs(info.Env(), self->port->control());
}

// [ring ArrayBuffer, its kRingGen]: the current ring, for a JS view that found its own stale.
Napi::Value portRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativePort* self = checkedPortOf(info);
  uint32_t generation = 0;
  std::shared_ptr<SharedBlock> ring = self->port->ring(&generation);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, sharedBlockToJs(env, ring));
  pair.Set(1u, Napi::Number::New(env, generation));
  return pair;
}

// JS's unlock found a lock word at 2: wake one thread parked on it. The second argument is the
// word's index (kTailLock or kHeadLock).
napi_value rawPortWakeLock(napi_env env, napi_callback_info info) {
  RawCall<2> call(env, info);
  if (!call.ok()) return nullptr;
  call.self->port->wakeLockWaiter(uint32Of(env, call.argv[1]) == kHeadLock);
  return nullptr;
}

}  // namespace

std::shared_ptr<Port> unwrapPort(Napi::Env env, Napi::Value value) {
  NativePort* self = taggedPort(env, value);
  if (self == nullptr) throw env.GetAndClearPendingException();
  return self->port;
}

Napi::Value sharedBlockToJs(Napi::Env env, const std::shared_ptr<SharedBlock>& block) {
  auto* keep = new std::shared_ptr<SharedBlock>(block);
  napi_value buffer;
  const napi_status status = napi_create_external_arraybuffer(
      env, block->words(), block->byteLength(),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<SharedBlock>*>(hint); }, keep,
      &buffer);
  if (status != napi_ok) {
    delete keep;
    // Runtimes with the V8 sandbox forbid external memory: JS then gets no shared view and makes
    // every call in native code (@iocp/core handles `undefined`).
    return env.Undefined();
  }
  return Napi::Value(env, buffer);
}

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
      {"portGetAsync", portGetAsync},
      {"portCancelAsync", portCancelAsync},
      {"portBlockingEnter", portBlockingEnter},
      {"portBlockingLeave", portBlockingLeave},
      {"portClose", portClose},
      {"portShutdown", portShutdown},
      {"portStats", portStats},
      {"portHandle", portHandle},
      {"portRecoverHeld", portRecoverHeld},
      {"portControl", portControl},
      {"portRing", portRing},
  };
  for (const Entry& entry : entries) {
    exports.Set(entry.name, Napi::Function::New(env, entry.fn, entry.name, state));
  }
  struct RawEntry {
    const char* name;
    napi_callback fn;
  };
  static const RawEntry rawEntries[] = {
      {"portPost", rawPortPost},
      {"portPostEx", rawPortPostEx},
      {"portPostMany", rawPortPostMany},
      {"portGet", rawPortGet},
      {"portGetMany", rawPortGetMany},
      {"portGetManyInto", rawPortGetManyInto},
      {"portWakeLock", rawPortWakeLock},
  };
  for (const RawEntry& entry : rawEntries) {
    napi_value fn;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, entry.name, NAPI_AUTO_LENGTH, entry.fn, state, &fn));
    exports.Set(entry.name, Napi::Value(env, fn));
  }
}

}  // namespace iocp
