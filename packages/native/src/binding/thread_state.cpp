#include "thread_state.h"

#include <cstring>
#include <iterator>
#include <string>

#include "handle_table.h"

namespace iocp {

namespace {

void wakeAsyncWaiter(Waiter* waiter, bool) {
  // The releasing thread, with the port's lock held: only queue the delivery.
  AsyncWaiter* async = static_cast<AsyncWaiter*>(waiter->context);
  async->owner->pushReady(async);
}

void warnDropped(Napi::Env env, const Packet& packet) {
  try {
    Napi::Object process = env.Global().Get("process").As<Napi::Object>();
    Napi::Function emitWarning = process.Get("emitWarning").As<Napi::Function>();
    const std::string message =
        "@iocp/native: a packet (key " + std::to_string(packet.key) +
        ") on its way to an aborted getAsync() was dropped: its port was closed meanwhile";
    emitWarning.Call(process, {Napi::String::New(env, message), Napi::String::New(env, "IocpPacketDropped")});
  } catch (const Napi::Error&) {
  }
}

void callJs(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;  // the environment is going away; teardown requeues
  static_cast<ThreadState*>(context)->deliverReady(env);
}

void forgetThreadSafeFunction(napi_env, void*, void* context) {
  static_cast<ThreadState*>(context)->consumer.get();  // nothing to free: teardown owns it
}

}  // namespace

ThreadState& threadState(napi_env env) {
  return *Napi::Env(env).GetInstanceData<ThreadState>();
}

ThreadState::ThreadState(Napi::Env) {}

ThreadState::~ThreadState() {
  discardUntakenPayloads();
}

void ThreadState::init(Napi::Env env, Napi::Uint32Array scratch, uint64_t threadId,
                       Napi::Function onAsync) {
  if (consumer) {
    setScratch(scratch);
    onAsync_ = Napi::Persistent(onAsync);
    return;
  }
  consumer.reset(new Consumer(threadId));
  env_ = env;
  // A get parked in this thread checks every Consumer::kAbandonPollMs whether the environment
  // is being torn down (worker.terminate(), process exit), and gives up if so: so a blocked
  // worker can still be terminated, even when no exit hook or close() wakes it.
  consumer->setAbandonCheck(
      [](void* self) {
        ThreadState* state = static_cast<ThreadState*>(self);
        return !state->canRunJs(state->env_);
      },
      this);
  setScratch(scratch);
  onAsync_ = Napi::Persistent(onAsync);
  napi_value name = Napi::String::New(env, "iocp.getAsync");
  NAPI_THROW_IF_FAILED_VOID(
      env, napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr,
                                           forgetThreadSafeFunction, this, callJs, &tsfn_));
  NAPI_THROW_IF_FAILED_VOID(env, napi_unref_threadsafe_function(env, tsfn_));
  // Registered after the thread-safe function so that it runs before Node tears that down
  // (cleanup hooks run in reverse order of registration).
  env.AddCleanupHook([this] { teardown(); });
}

void ThreadState::setScratch(Napi::Uint32Array array) {
  scratchRef_ = Napi::Persistent(array);
  scratch = array.Data();
  scratchPackets = array.ElementLength() / PACKET_WORDS;
}

void ThreadState::setDataScratch(Napi::Uint8Array bytes) {
  dataScratchRef_ = Napi::Persistent(bytes);
  dataScratch = bytes.Data();
  dataScratchLength = bytes.ByteLength();
}

Packet* ThreadState::batchFor(size_t count) {
  discardUntakenPayloads();
  if (batch_.size() < count) batch_.resize(count);  // grows to the peak batch, then reused
  return batch_.data();
}

Packet* ThreadState::postScratch(size_t count) {
  if (posting_.size() < count) posting_.resize(count);
  return posting_.data();
}

void ThreadState::discardUntakenPayloads() {
  for (size_t i = 0; i < batchCount_; ++i) {
    Payload::destroy(batch_[i].data);
    batch_[i].data = nullptr;
  }
  batchCount_ = 0;
}

void ThreadState::writePackets(uint32_t* out, const Packet* packets, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const Packet& p = packets[i];
    uint32_t* words = out + i * PACKET_WORDS;
    words[0] = static_cast<uint32_t>(p.key);
    words[1] = static_cast<uint32_t>(p.key >> 32);
    words[2] = static_cast<uint32_t>(p.overlapped);
    words[3] = static_cast<uint32_t>(p.overlapped >> 32);
    words[4] = p.bytes;
    words[5] = p.flags | (p.data != nullptr ? FLAG_HAS_DATA : 0);
    words[6] = 0;  // a payload is fetched with takeData(i), not by token
    words[7] = 0;
  }
}

void ThreadState::rememberBatch(size_t count) {
  batchCount_ = count;
}

Payload* ThreadState::takePayload(size_t index) {
  if (index >= batchCount_) return nullptr;
  Payload* payload = batch_[index].data;
  batch_[index].data = nullptr;
  return payload;
}

bool ThreadState::canRunJs(napi_env env) const {
  // napi_strict_equals starts with Node-API's preamble, which refuses to run once the
  // environment can no longer call into JS (worker.terminate(), process exit): a cheap probe.
  napi_value undefined;
  bool equal = false;
  if (napi_get_undefined(env, &undefined) != napi_ok) return false;
  return napi_strict_equals(env, undefined, undefined, &equal) == napi_ok;
}

AsyncWaiter* ThreadState::acquireWaiter(const std::shared_ptr<Port>& port) {
  std::unique_ptr<AsyncWaiter> waiter;
  if (free_.empty()) {
    waiter.reset(new AsyncWaiter());
  } else {
    waiter = std::move(free_.back());
    free_.pop_back();
  }
  waiter->port = port;
  waiter->owner = this;
  // Ids are positive and, after 2^32 calls, wrap: skip any still pending (a long-lived waiter).
  do {
    if (++nextId_ == 0) nextId_ = 1;
  } while (pending.count(nextId_) != 0);
  waiter->id = nextId_;
  waiter->waiter.reset();
  waiter->waiter.context = waiter.get();
  waiter->waiter.wake = wakeAsyncWaiter;
  return waiter.release();
}

void ThreadState::recycleWaiter(AsyncWaiter* waiter) {
  waiter->port.reset();
  free_.emplace_back(waiter);
}

void ThreadState::updateRef(napi_env env) {
  const bool want = !pending.empty();
  if (want == refed_ || tsfn_ == nullptr) return;
  if (want) napi_ref_threadsafe_function(env, tsfn_);
  else napi_unref_threadsafe_function(env, tsfn_);
  refed_ = want;
}

void ThreadState::pushReady(AsyncWaiter* waiter) {
  bool wasEmpty;
  {
    std::lock_guard<std::mutex> lock(readyMutex_);
    wasEmpty = ready_.empty();
    ready_.push_back(waiter);
  }
  if (wasEmpty) napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
}

void ThreadState::deliverReady(napi_env rawEnv) {
  // Node may still run this callback after worker.terminate() began. JS cannot take packets
  // then: they stay on ready_, and teardown (which surely follows) gives them back.
  if (!canRunJs(rawEnv)) return;
  Napi::Env env(rawEnv);
  {
    std::lock_guard<std::mutex> lock(readyMutex_);
    std::swap(ready_, delivering_);
  }
  bool threw = false;
  Napi::Error firstError;
  for (AsyncWaiter* waiter : delivering_) {
    pending.erase(waiter->id);
    Napi::HandleScope scope(env);
    const bool delivered = waiter->waiter.state == WaitState::Delivered;
    Packet packet = waiter->waiter.slot;
    waiter->waiter.slot = Packet{};
    // The payload stays native until JS accepts the packet and asks for it (takeAsyncData),
    // so a refused packet goes back with its payload untouched: no copy, nothing to allocate.
    asyncPayload_ = delivered ? packet.data : nullptr;
    bool accepted = false;
    try {
      napi_value args[8] = {
          Napi::Number::New(env, waiter->id),
          Napi::Number::New(env, delivered ? 0 : STATUS_CLOSED),
          Napi::Number::New(env, static_cast<uint32_t>(packet.key)),
          Napi::Number::New(env, static_cast<uint32_t>(packet.key >> 32)),
          Napi::Number::New(env, static_cast<uint32_t>(packet.overlapped)),
          Napi::Number::New(env, static_cast<uint32_t>(packet.overlapped >> 32)),
          Napi::Number::New(env, packet.bytes),
          Napi::Number::New(env, packet.flags | (packet.data != nullptr ? FLAG_HAS_DATA : 0)),
      };
      Napi::Value result = onAsync_.Value().Call(8, args);
      accepted = !result.IsBoolean() || result.As<Napi::Boolean>().Value();
    } catch (const Napi::Error& error) {
      // Not taken (the callback failed): the packet goes back below, like a refused one.
      if (!threw) firstError = error;
      threw = true;
      accepted = false;
    }
    Payload* payload = asyncPayload_;  // nullptr if JS took it
    asyncPayload_ = nullptr;
    if (delivered && !accepted) {
      // The waiter was aborted while its packet was on the way (or the callback failed): the
      // packet goes back to the head of the queue with its payload (a rare path). A payload JS
      // took already before refusing is JS's; the packet goes back without it.
      Packet back = packet;
      back.data = payload;
      if (waiter->port->requeue(*consumer, &back, 1, true) != Status::Ok) {
        // The port closed while the packet was on its way (close() could not return it, and
        // nobody can take it now), or no memory was left to requeue it: freed, but not silently.
        Payload::destroy(back.data);
        warnDropped(env, back);
      }
    } else {
      Payload::destroy(payload);  // JS accepted without taking it, or nothing was delivered
    }
    recycleWaiter(waiter);
  }
  delivering_.clear();
  updateRef(rawEnv);
  if (threw) firstError.ThrowAsJavaScriptException();
}

void ThreadState::viewed(const std::shared_ptr<Port>& port) {
  if (viewed_.size() >= 2 * viewedSwept_ + 8) {
    for (auto it = viewed_.begin(); it != viewed_.end();) it = it->second.expired() ? viewed_.erase(it) : std::next(it);
    viewedSwept_ = viewed_.size();
  }
  viewed_[port->token()] = port;
}

void ThreadState::teardown() {
  if (!consumer) return;
  // 0. JS may have been stopped inside a port's critical section (worker.terminate() stops it at
  //    any function entry): release the lock it held, or make the wake its unlock had not made,
  //    before anything below (or another thread) waits for that lock.
  const auto lockPort = viewed_.find((*consumer->block())[kLockPort].load(std::memory_order_relaxed));
  if (lockPort != viewed_.end()) {
    if (std::shared_ptr<Port> port = lockPort->second.lock()) port->releaseAbandonedLock(*consumer);
  }
  viewed_.clear();
  // 1. Withdraw pending async waiters. A waiter that can no longer be withdrawn was delivered or
  //    closed, and its wake (which ran under the port's mutex) has put it on ready_ already.
  for (auto& entry : pending) {
    AsyncWaiter* waiter = entry.second;
    if (waiter->port->cancelAsync(waiter->waiter)) recycleWaiter(waiter);
  }
  pending.clear();
  // 2. Deliveries JS will never see go back to their ports' heads.
  {
    std::lock_guard<std::mutex> lock(readyMutex_);
    std::swap(ready_, delivering_);
  }
  for (AsyncWaiter* waiter : delivering_) {
    if (waiter->waiter.state == WaitState::Delivered) {
      Packet packet = waiter->waiter.slot;
      if (waiter->port->requeue(*consumer, &packet, 1, true) != Status::Ok) Payload::destroy(packet.data);
    }
    recycleWaiter(waiter);
  }
  delivering_.clear();
  // 3. This thread stops counting as running anywhere; what it held becomes an orphan record.
  for (const std::shared_ptr<Port>& port : HandleTable::instance().live()) port->forget(*consumer);
  discardUntakenPayloads();
  if (tsfn_ != nullptr) {
    napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
    tsfn_ = nullptr;
  }
}

Napi::Value payloadToJs(Napi::Env env, Payload* payload) {
  // A copy into a V8-allocated ArrayBuffer, whatever the size: V8 frees it in a garbage
  // collection, which allocation pressure triggers even in a thread that never returns to its
  // event loop. An external (zero-copy) buffer would be freed only by a finalizer that runs when
  // the event loop turns, so a consumer looping in get() would grow without bound.
  const size_t length = payload->length;
  napi_value buffer;
  void* bytes = nullptr;
  const napi_status status = napi_create_arraybuffer(env, length, &bytes, &buffer);
  if (status == napi_ok && length != 0) std::memcpy(bytes, payload->bytes(), length);
  Payload::destroy(payload);
  NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  return Napi::Uint8Array::New(env, length, Napi::ArrayBuffer(env, buffer), 0);
}

Payload* ThreadState::takeAsyncPayload() {
  Payload* payload = asyncPayload_;
  asyncPayload_ = nullptr;
  return payload;
}

}  // namespace iocp
