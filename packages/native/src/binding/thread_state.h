// Everything the binding keeps per Node environment (the main thread and each worker): the
// engine's Consumer for this thread, the scratch the packets are written to, payloads waiting to
// be taken, and the async delivery path for getAsync.
//
// Async delivery: an AsyncWaiter's wake runs on whichever thread released it, with that port's
// lock held. It only appends the waiter to `ready_` (under readyMutex_) and, when the list was
// empty, pokes the thread-safe function, whose callback then runs on this environment's event
// loop and hands every ready waiter to JS. The thread-safe function is referenced (keeps the
// loop alive) exactly while getAsync calls are pending.
//
// Locking: readyMutex_ guards ready_ and is taken inside a port's lock (port -> ready), never
// the other way round. tsfn_ is written only by init() and teardown() on this thread, while no
// releaser can reach this thread's waiters; everything else is confined to this thread.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../port/port.h"
#include "../port/shared_layout.h"

namespace iocp {

struct ThreadState;

struct AsyncWaiter {
  Waiter waiter;
  std::shared_ptr<Port> port;
  uint32_t id = 0;
  ThreadState* owner = nullptr;
};

struct ThreadState {
  explicit ThreadState(Napi::Env env);
  ~ThreadState();

  // Called once from JS: the scratch, this thread's id, and the async delivery callback.
  void init(Napi::Env env, Napi::Uint32Array scratch, uint64_t threadId, Napi::Function onAsync);
  void setScratch(Napi::Uint32Array scratch);
  // Where takeData copies small payloads (index.js registers it when the addon loads).
  void setDataScratch(Napi::Uint8Array bytes);

  // Packets of the last get on this thread live in `batch` until their payloads are taken.
  Packet* batchFor(size_t count);
  void discardUntakenPayloads();
  // Room for `count` packets being posted by postMany (reused; grows to the peak).
  Packet* postScratch(size_t count);
  // After a get: packets [0, count) of the batch may have payloads for takePayload.
  void rememberBatch(size_t count);
  Payload* takePayload(size_t index);  // nullptr if none (or taken already)
  // Inside the async callback: the payload of the packet being delivered (once), else nullptr.
  Payload* takeAsyncPayload();
  // Writes packets [0, count) of `batch` as PACKET_WORDS words each.
  static void writePackets(uint32_t* out, const Packet* packets, size_t count);

  // False once this environment is being torn down (worker.terminate(), process exit): a packet
  // received now could never reach JS.
  bool canRunJs(napi_env env) const;

  // Async waiters.
  AsyncWaiter* acquireWaiter(const std::shared_ptr<Port>& port);
  void recycleWaiter(AsyncWaiter* waiter);
  // Keeps the event loop alive exactly while getAsync calls are pending.
  void updateRef(napi_env env);
  void pushReady(AsyncWaiter* waiter);  // any thread, port mutex held
  void deliverReady(napi_env env);      // this thread's event loop

  // This thread has a JS view of `port`'s shared memory (portControl): as it goes away, a lock
  // that view held is released (teardown, Port::releaseAbandonedLock).
  void viewed(const std::shared_ptr<Port>& port);

  // Cleanup hook: this environment goes away.
  void teardown();

  std::unique_ptr<Consumer> consumer;  // created by init()
  uint32_t* scratch = nullptr;
  size_t scratchPackets = 0;
  unsigned char* dataScratch = nullptr;
  size_t dataScratchLength = 0;
  std::unordered_map<uint32_t, AsyncWaiter*> pending;

 private:
  napi_env env_ = nullptr;
  Napi::Reference<Napi::Uint32Array> scratchRef_;
  Napi::Reference<Napi::Uint8Array> dataScratchRef_;
  Napi::FunctionReference onAsync_;
  std::vector<Packet> batch_;
  std::vector<Packet> posting_;
  size_t batchCount_ = 0;
  napi_threadsafe_function tsfn_ = nullptr;
  uint32_t nextId_ = 0;
  std::vector<std::unique_ptr<AsyncWaiter>> free_;
  std::mutex readyMutex_;
  std::vector<AsyncWaiter*> ready_;
  std::vector<AsyncWaiter*> delivering_;  // swapped with ready_ so neither reallocates each time
  bool refed_ = false;
  Payload* asyncPayload_ = nullptr;  // the delivery in progress in deliverReady
  // The ports this thread has JS views of, by kToken; entries of ports that have died are swept
  // whenever the map has doubled since the last sweep, so it stays within about twice the live
  // ones. Confined to this thread.
  std::unordered_map<uint32_t, std::weak_ptr<Port>> viewed_;
  size_t viewedSwept_ = 0;
};

ThreadState& threadState(napi_env env);

// A Uint8Array holding a copy of `payload`, in memory V8 owns; frees `payload`.
Napi::Value payloadToJs(Napi::Env env, Payload* payload);

// Payloads below this size are copied into the thread's data scratch and sliced out in JS,
// which is cheaper than an ArrayBuffer made in C++ (docs/architecture.md, "Payloads").
constexpr size_t kScratchPayloadMax = 16 * 1024;

// Words per packet in a scratch or batch buffer: the first six words of a ring slot
// (shared_layout.h), then the payload token words, which JS zeroes once it has the payload. The
// same stride as the ring, so that JS moves batches between the two with TypedArray.set.
constexpr uint32_t PACKET_WORDS = kSlotWords;
constexpr uint32_t FLAG_KEY_BIGINT = 1;
constexpr uint32_t FLAG_OVERLAPPED_BIGINT = 2;
constexpr uint32_t FLAG_HAS_DATA = 4;

// The statuses that cross into JS (see native.d.ts).
constexpr int32_t STATUS_CLOSED = -1;
constexpr int32_t STATUS_FULL = -2;
constexpr int32_t STATUS_TERMINATING = -3;
// Internal to the binding: a JS exception is pending (never reaches JS as a value).
constexpr int32_t STATUS_EXCEPTION = -100;

}  // namespace iocp
