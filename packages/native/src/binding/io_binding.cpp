// Buffers: an operation keeps the caller's SharedArrayBuffer alive with a napi_ref on it (one
// per run of ops on the same buffer in a batch) until its completion is posted. The ref can only
// be deleted on this environment's thread, so the backend thread that finishes the op queues it
// (IoEnv::queueRelease), and a thread-safe function, unreferenced so that it never keeps the loop
// alive, deletes the queued refs on the next turn of the event loop; every io* call also deletes
// them first.
//
// Teardown: the environment's cleanup hook cancels every operation this thread issued and
// waits for them (regular-file I/O ends in bounded time), then deletes the refs: no operation
// ever writes into a buffer of an environment that is gone.
#include "io_binding.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../io/op_pool.h"
#include "../io/service.h"
#include "native_port.h"
#include "raw_args.h"
#include "thread_state.h"

namespace iocp {

namespace {

using raw::doubleOf;
using raw::int32;
using raw::intOf;
using raw::u64Of;

using io::IoStatus;

io::IoService& service() {
  // One per process, never destroyed: pool threads and the reaper may still run at exit, and a
  // static destructor must not race them. IOCP_IO_THREADS sizes the thread pool (default 4, as
  // libuv's); the ring has 256 entries.
  static io::IoService* instance = [] {
    unsigned threads = 4;
    if (const char* value = std::getenv("IOCP_IO_THREADS")) {
      const long parsed = std::strtol(value, nullptr, 10);
      if (parsed >= 1 && parsed <= 256) threads = static_cast<unsigned>(parsed);
    }
    return new io::IoService(threads, 256, io::Preference::Auto);
  }();
  return *instance;
}

struct IoEnv {
  napi_env env = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::mutex mutex;
  std::vector<napi_ref> released;  // guarded by mutex
  std::atomic<bool> pending{false};
  std::string why;  // the reason of the last Unavailable answer

  // Any thread: the op that held `ref` is done.
  void queueRelease(napi_ref ref) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      wake = released.empty();
      released.push_back(ref);
    }
    pending.store(true, std::memory_order_release);
    if (wake) napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
  }

  // This environment's thread: deletes the refs of finished ops.
  void flush() {
    if (!pending.load(std::memory_order_acquire)) return;
    std::vector<napi_ref> refs;
    {
      std::lock_guard<std::mutex> lock(mutex);
      refs.swap(released);
      pending.store(false, std::memory_order_relaxed);
    }
    for (napi_ref ref : refs) napi_delete_reference(env, ref);
  }
};

// Keeps one SharedArrayBuffer alive for every op that holds it: the ops of a batch whose views
// share a buffer share one keeper (one napi_ref), released when the last of them completes.
class RefKeeper final : public io::Keeper {
 public:
  RefKeeper(IoEnv* owner, napi_ref ref, uint32_t holders = 1) : owner_(owner), ref_(ref), holders_(holders) {}
  // One more op holds it. Only while the submitting thread still owns every holder (before
  // submit), so relaxed is enough; release's acq_rel orders the ops' completions before the last.
  void hold() noexcept { holders_.fetch_add(1, std::memory_order_relaxed); }
  // Set once, by the submitting thread, before any op holding this keeper is submitted.
  void setRef(napi_ref ref) noexcept { ref_ = ref; }
  // Deletes the reference and this keeper at once, on the environment's thread: for a batch that
  // was never submitted.
  void discard(napi_env env) noexcept {
    if (ref_ != nullptr) napi_delete_reference(env, ref_);
    delete this;
  }
  void release() noexcept override {
    if (holders_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    owner_->queueRelease(ref_);
    delete this;
  }

 private:
  IoEnv* owner_;
  napi_ref ref_;
  std::atomic<uint32_t> holders_;
};

template <size_t N>
struct Call {
  napi_value argv[N];
  IoEnv* io = nullptr;
  NativePort* self = nullptr;
  Call(napi_env env, napi_callback_info info) {
    size_t argc = N;
    void* data = nullptr;
    napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
    io = static_cast<IoEnv*>(data);
    void* external = nullptr;
    napi_get_value_external(env, argv[0], &external);
    self = static_cast<NativePort*>(external);
    io->flush();
  }
};

// (port, preference: 0 auto | 1 thread pool | 2 io_uring) -> IoStatus
napi_value ioConfigure(napi_env env, napi_callback_info info) {
  Call<2> call(env, info);
  const char* why = nullptr;
  const IoStatus status =
      service().configure(call.self->port, static_cast<io::Preference>(intOf(env, call.argv[1])), &why);
  if (why != nullptr) call.io->why = why;
  return int32(env, static_cast<int32_t>(status));
}

// (port, fd, key: number | bigint) -> IoStatus, or -errno when dup() failed
napi_value ioAssociate(napi_env env, napi_callback_info info) {
  Call<3> call(env, info);
  uint32_t keyFlags = 0;
  const uint64_t key = u64Of(env, call.argv[2], FLAG_KEY_BIGINT, keyFlags);
  const char* why = nullptr;
  int error = 0;
  const IoStatus status = service().associate(call.self->port, intOf(env, call.argv[1]), key, keyFlags, &why, &error);
  if (why != nullptr) call.io->why = why;
  if (status == IoStatus::SystemError) return int32(env, -error);
  return int32(env, static_cast<int32_t>(status));
}

// (port, fd) -> IoStatus; waits for the fd's operations (cancelled) to finish
napi_value ioDissociate(napi_env env, napi_callback_info info) {
  Call<2> call(env, info);
  return int32(env, static_cast<int32_t>(service().dissociate(call.self->port.get(), intOf(env, call.argv[1]))));
}

// Fills `op` from the association `target` and the op's own fields (the buffer and keeper are
// the caller's to set).
void fillOp(io::Op* op, const io::Target& target, IoEnv* io, NativePort* self, int kind, int fd, double position) {
  op->kind = static_cast<io::OpKind>(kind);
  op->fd = target.fd;
  op->fdHolder = target.dup;
  op->fileSlot = target.dup->slot;
  op->fileId = target.dup->slotId;
  op->userFd = fd;
  op->offset = static_cast<uint64_t>(position);
  op->port = self->port;
  op->owner = io;
  op->packet.key = target.key;
  op->packet.flags = target.keyFlags;
}

// A keeper of `view`'s SharedArrayBuffer for `holders` ops (throws std::bad_alloc with nothing
// referenced); `*data` is the view's first byte, `*base` the buffer's (data minus byteOffset).
RefKeeper* keeperOf(napi_env env, IoEnv* io, napi_value view, uint32_t holders, char** data, char** base) {
  napi_typedarray_type type;
  size_t elements = 0;
  void* bytes = nullptr;
  napi_value arraybuffer = nullptr;
  size_t byteOffset = 0;
  napi_get_typedarray_info(env, view, &type, &elements, &bytes, &arraybuffer, &byteOffset);
  *data = static_cast<char*>(bytes);
  *base = *data - byteOffset;
  RefKeeper* keeper = new RefKeeper(io, nullptr, holders);
  napi_ref ref = nullptr;
  napi_create_reference(env, arraybuffer, 1, &ref);  // the SharedArrayBuffer itself
  keeper->setRef(ref);
  return keeper;
}

// (port, kind, fd, view: Uint8Array | undefined, position, length, overlapped) -> IoStatus, or
// -ENOMEM with nothing submitted
napi_value ioSubmit(napi_env env, napi_callback_info info) {
  Call<7> call(env, info);
  const int fd = intOf(env, call.argv[2]);
  io::Target target;
  const IoStatus status = service().lookup(call.self->port.get(), fd, &target);
  if (status != IoStatus::Ok) return int32(env, static_cast<int32_t>(status));
  io::Op* op = nullptr;
  try {
    io::OpPool::instance().take(&op, 1);
    fillOp(op, target, call.io, call.self, intOf(env, call.argv[1]), fd, doubleOf(env, call.argv[4]));
    op->packet.overlapped = u64Of(env, call.argv[6], FLAG_OVERLAPPED_BIGINT, op->packet.flags);
    if (op->kind != io::OpKind::Fsync) {
      char* data = nullptr;
      char* base = nullptr;
      op->keeper = keeperOf(env, call.io, call.argv[3], 1, &data, &base);
      op->buffer = data;  // @iocp/core passes a Uint8Array: elements == bytes >= length
      op->length = static_cast<uint32_t>(doubleOf(env, call.argv[5]));
    }
  } catch (const std::bad_alloc&) {
    if (op != nullptr) io::OpPool::instance().give(&op, 1);
    return int32(env, -ENOMEM);
  }
  target.backend->submit(&op, 1);
  return int32(env, 0);
}

// ioSubmitMany's meta: kIoMetaWords doubles per op (io.ts writes the same layout, and checks
// kIoMetaWords against the addon's IO_META_WORDS at load).
enum IoMeta : size_t {
  kMetaKind = 0,        // 0 read, 1 write, 2 fsync; + kMetaBigint when overlapped was a bigint
  kMetaFd = 1,
  kMetaPosition = 2,
  kMetaLength = 3,
  kMetaView = 4,        // index into `views` (read/write)
  kMetaOffset = 5,      // the op's first byte, from the start of that view's SharedArrayBuffer
  kMetaOverlapped = 6,  // the overlapped number; for a bigint its low 32 bits
  kMetaOverlappedHi = 7,  // for a bigint, its high 32 bits
  kIoMetaWords = 8,
};
constexpr int kMetaBigint = 16;

// (port, meta: Float64Array, kIoMetaWords per op, views: Array of views, one per distinct
// SharedArrayBuffer of the batch, count) -> 0, or (index << 4 | IoStatus) of the first op
// refused, with nothing submitted, or -ENOMEM. No Node-API call per op: one lookup per run of ops on the
// same fd, one napi_ref (one keeper) per view.
napi_value submitMany(napi_env env, napi_callback_info info);

napi_value ioSubmitMany(napi_env env, napi_callback_info info) {
  try {
    return submitMany(env, info);
  } catch (const std::bad_alloc&) {  // before anything was taken or referenced
    return int32(env, -ENOMEM);
  }
}

napi_value submitMany(napi_env env, napi_callback_info info) {
  Call<4> call(env, info);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(env, call.argv[1], &type, &length, &data, nullptr, nullptr);
  const double* meta = static_cast<const double*>(data);
  const uint32_t count = static_cast<uint32_t>(doubleOf(env, call.argv[3]));
  if (count == 0) return int32(env, 0);
  // Validate first: every fd looked up before anything is taken or referenced.
  struct Lookup {
    int fd;
    io::Target target;
  };
  std::vector<Lookup> lookups;  // one per run of ops on the same fd (usually one)
  std::vector<uint32_t> targetOf(count);
  uint32_t viewCount = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const double* m = meta + size_t(i) * kIoMetaWords;
    const int fd = static_cast<int>(m[kMetaFd]);
    if (lookups.empty() || lookups.back().fd != fd) {
      Lookup lookup{fd, {}};
      const IoStatus status = service().lookup(call.self->port.get(), fd, &lookup.target);
      if (status != IoStatus::Ok) return int32(env, static_cast<int32_t>((i << 4) | static_cast<uint32_t>(status)));
      lookups.push_back(std::move(lookup));
    }
    targetOf[i] = static_cast<uint32_t>(lookups.size() - 1);
    if ((static_cast<int>(m[kMetaKind]) & 15) != static_cast<int>(io::OpKind::Fsync)) {
      const uint32_t view = static_cast<uint32_t>(m[kMetaView]);
      if (view + 1 > viewCount) viewCount = view + 1;
    }
  }
  std::vector<io::Op*> ops(count, nullptr);
  std::vector<RefKeeper*> keepers(viewCount, nullptr);
  std::vector<char*> bases(viewCount, nullptr);
  try {
    io::OpPool::instance().take(ops.data(), count);
    // One keeper per view, holding as many ops as use it.
    std::vector<uint32_t> holders(viewCount, 0);
    for (uint32_t i = 0; i < count; ++i) {
      const double* m = meta + size_t(i) * kIoMetaWords;
      if ((static_cast<int>(m[kMetaKind]) & 15) != static_cast<int>(io::OpKind::Fsync)) ++holders[static_cast<uint32_t>(m[kMetaView])];
    }
    for (uint32_t v = 0; v < viewCount; ++v) {
      if (holders[v] == 0) continue;
      napi_value view;
      napi_get_element(env, call.argv[2], v, &view);
      char* data = nullptr;
      keepers[v] = keeperOf(env, call.io, view, holders[v], &data, &bases[v]);
    }
  } catch (const std::bad_alloc&) {
    // Nothing was submitted: give back what was taken, drop what was referenced.
    if (ops.front() != nullptr) io::OpPool::instance().give(ops.data(), count);
    for (RefKeeper* keeper : keepers) {
      if (keeper != nullptr) keeper->discard(env);
    }
    return int32(env, -ENOMEM);
  }
  for (uint32_t i = 0; i < count; ++i) {
    const double* m = meta + size_t(i) * kIoMetaWords;
    const int kind = static_cast<int>(m[kMetaKind]);
    io::Op* op = ops[i];
    const Lookup& lookup = lookups[targetOf[i]];
    fillOp(op, lookup.target, call.io, call.self, kind & 15, lookup.fd, m[kMetaPosition]);
    if ((kind & kMetaBigint) != 0) {
      op->packet.overlapped = static_cast<uint64_t>(m[kMetaOverlapped]) | (static_cast<uint64_t>(m[kMetaOverlappedHi]) << 32);
      op->packet.flags |= FLAG_OVERLAPPED_BIGINT;
    } else {
      op->packet.overlapped = static_cast<uint64_t>(m[kMetaOverlapped]);
    }
    if (op->kind != io::OpKind::Fsync) {
      const uint32_t v = static_cast<uint32_t>(m[kMetaView]);
      op->buffer = bases[v] + static_cast<size_t>(m[kMetaOffset]);
      op->length = static_cast<uint32_t>(m[kMetaLength]);
      op->keeper = keepers[v];
    }
  }
  // One port has one backend: every op of the batch goes to the same one.
  lookups.front().target.backend->submit(ops.data(), count);
  return int32(env, 0);
}

// (port, fd, overlapped: number | bigint | undefined) -> ops asked to cancel, or -IoStatus
napi_value ioCancel(napi_env env, napi_callback_info info) {
  Call<3> call(env, info);
  const int fd = intOf(env, call.argv[1]);
  io::Target target;
  const IoStatus status = service().lookup(call.self->port.get(), fd, &target);
  if (status != IoStatus::Ok) return int32(env, -static_cast<int32_t>(status));
  napi_valuetype kind;
  napi_typeof(env, call.argv[2], &kind);
  uint32_t flags = 0;
  const bool one = kind != napi_undefined;
  const uint64_t overlapped = one ? u64Of(env, call.argv[2], FLAG_OVERLAPPED_BIGINT, flags) : 0;
  return int32(env, static_cast<int32_t>(target.backend->cancel(call.self->port.get(), fd, one, overlapped)));
}

// (port): cancels and waits for the port's operations, and forgets its associations. Called
// by close() before the port itself closes, so that their packets are among those it returns.
napi_value ioClosePort(napi_env env, napi_callback_info info) {
  Call<1> call(env, info);
  service().closePort(call.self->port.get());
  call.io->flush();
  return nullptr;
}

// (port, out: Float64Array(5)) -> the backend's name, or undefined before the first association;
// out = [submitted, completed, failed, cancelled, inFlight] of that backend (process-wide).
napi_value ioStats(napi_env env, napi_callback_info info) {
  Call<2> call(env, info);
  io::Backend* backend = service().backendOf(call.self->port.get());
  napi_value result;
  if (backend == nullptr) {
    napi_get_undefined(env, &result);
    return result;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(env, call.argv[1], &type, &length, &data, nullptr, nullptr);
  const io::BackendStats s = backend->stats();
  double* out = static_cast<double*>(data);
  out[0] = double(s.submitted);
  out[1] = double(s.completed);
  out[2] = double(s.failed);
  out[3] = double(s.cancelled);
  out[4] = double(s.inFlight);
  napi_create_string_utf8(env, backend->name(), NAPI_AUTO_LENGTH, &result);
  return result;
}

// () -> the reason of this thread's last Unavailable answer
napi_value ioWhy(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  napi_value result;
  napi_create_string_utf8(env, static_cast<IoEnv*>(data)->why.c_str(), NAPI_AUTO_LENGTH, &result);
  return result;
}

// (kind: 0 thread pool | 1 io_uring, paused: boolean) -> whether that backend exists. Test hook:
// a paused backend starts nothing, so tests can hold operations in flight without sleeping.
napi_value ioTestPause(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  bool paused = false;
  napi_get_value_bool(env, argv[1], &paused);
  io::Backend* backend = service().backend(static_cast<io::BackendKind>(intOf(env, argv[0])), nullptr);
  if (backend != nullptr) backend->setPaused(paused);
  napi_value result;
  napi_get_boolean(env, backend != nullptr, &result);
  return result;
}

// (view: TypedArray) -> the address of its first byte modulo 4096. Lets @iocp/core hand out
// page-aligned views (a misaligned destination makes the kernel's copy several times slower, and
// the allocator behind SharedArrayBuffer starts large blocks 16 bytes into a page).
napi_value ioPageOffset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr);
  return int32(env, static_cast<int32_t>(reinterpret_cast<uintptr_t>(data) & 4095u));
}

void flushOnLoop(napi_env env, napi_value, void* context, void*) {
  if (env != nullptr) static_cast<IoEnv*>(context)->flush();
}

void teardown(void* arg) {
  IoEnv* io = static_cast<IoEnv*>(arg);
  service().drainOwner(io);  // every op of this thread is done: its keeper has queued its ref
  io->pending.store(true, std::memory_order_relaxed);
  io->flush();
  napi_release_threadsafe_function(io->tsfn, napi_tsfn_abort);  // its finalizer frees `io`
}

}  // namespace

void defineIoFunctions(Napi::Env env, Napi::Object exports) {
  IoEnv* io = new IoEnv;
  io->env = env;
  napi_value name;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_string_utf8(env, "iocp-io-release", NAPI_AUTO_LENGTH, &name));
  NAPI_THROW_IF_FAILED_VOID(
      env, napi_create_threadsafe_function(
               env, nullptr, nullptr, name, 0, 1, io,
               [](napi_env, void* data, void*) { delete static_cast<IoEnv*>(data); }, io, flushOnLoop, &io->tsfn));
  napi_unref_threadsafe_function(env, io->tsfn);
  // Registered after the thread-safe function, so it runs before the function's own teardown
  // (cleanup hooks run in reverse order of registration).
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, teardown, io));
  struct Entry {
    const char* name;
    napi_callback fn;
  };
  static const Entry entries[] = {
      {"ioConfigure", ioConfigure}, {"ioAssociate", ioAssociate}, {"ioDissociate", ioDissociate},
      {"ioSubmit", ioSubmit},       {"ioSubmitMany", ioSubmitMany}, {"ioCancel", ioCancel},
      {"ioClosePort", ioClosePort}, {"ioStats", ioStats},         {"ioWhy", ioWhy},
      {"ioTestPause", ioTestPause}, {"ioPageOffset", ioPageOffset},
  };
  for (const Entry& entry : entries) {
    napi_value fn;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, entry.name, NAPI_AUTO_LENGTH, entry.fn, io, &fn));
    exports.Set(entry.name, Napi::Value(env, fn));
  }
  exports.Set("FLAG_IO_ERROR", Napi::Number::New(env, io::kFlagIoError));
  exports.Set("IO_META_WORDS", Napi::Number::New(env, static_cast<double>(kIoMetaWords)));
}

}  // namespace iocp
