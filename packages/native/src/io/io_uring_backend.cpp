// The io_uring backend, through the raw system calls (io_uring_setup, io_uring_enter,
// io_uring_register) and the kernel's UAPI header: no liburing. Why not liburing: its headers
// and library are a build dependency (Debian's liburing-dev) that a fresh machine or a user's
// `npm install` may lack, and the backend would then be compiled out silently; the part of the
// interface used here (one ring, read/write/fsync/cancel, waiting for completions) is ~150 lines
// over the ABI the kernel keeps stable. Compiled wherever <linux/io_uring.h> exists; whether the
// kernel allows it is decided at run time (makeIoUringBackend returns null with the reason).
//
// Shape: up to one ring per core (at most 4), each with its own reaper thread; a thread submits
// to the ring of its slot (ringFor), so two threads submitting at once run in parallel (on one
// ring the kernel serializes submissions, and a read of cached pages is done inside
// io_uring_enter). Submitting threads fill SQEs and call io_uring_enter under the ring's
// `submitMutex_`; its reaper waits for completions (io_uring_enter GETEVENTS), posts them to their
// ports (Port::postMany, the engine's own path) and refills the ring from its `overflow_`. A
// submitting thread also takes the completions already posted when it has submitted (reads of
// cached pages complete inside io_uring_enter), so they do not wait for the reaper to run. At most
// `cqLimit_` entries are in a ring's kernel side at once, so its completion ring never overflows;
// the rest wait in `overflow_` (FIFO), where they are cancellable without the kernel. Each ring
// has a table of registered files (file_slots.h): an op whose duplicate fd has a slot is submitted
// on it (IOSQE_FIXED_FILE), so the kernel takes no reference on the shared struct file per op.
//
// The reaper sleeps on `reaperWake_`, outside the kernel, while nothing is in the kernel or a
// submitting thread is about to take what its submission completed (`inlineReapers_`); it waits
// in io_uring_enter only for what is left when that thread is done. A thread waiting in
// io_uring_enter is woken by every completion the kernel posts, so a reaper waiting there all the
// time would wake (and contend for the CQ) once per submission even when the submitter had taken
// everything itself. Every path that leaves entries in the kernel with no inline reaper about
// wakes it (wakeReaperLocked). IORING_SETUP_COOP_TASKRUN / DEFER_TASKRUN / SINGLE_ISSUER are not
// used: the ring is shared by every submitting thread (SINGLE_ISSUER refuses that), and the
// completion of an uncached read runs as task work of the thread that submitted it, which may be
// parked in a port's get(): only the default signal-style notification interrupts that wait.
//
// Locking: a ring's `submitMutex_` guards its SQ ring, `kernelEntries_`, `inlineReapers_`,
// `reaperParked_`; TrackedBackend::mutex_ guards the op list, every ring's `overflow_` and
// `paused_`; a ring's `cqMutex_` guards reading its CQ ring (the reaper, and a submitting thread
// that takes completions already posted). Order: one ring's submitMutex_, then mutex_; cqMutex_
// is never held with either, and no thread holds two rings' locks. A ring's submitMutex_ also
// guards its `slotIds_`; FileSlots' mutex comes before it (FileSlots::give calls forget).
//
// Cancellation: an op in `overflow_` completes with ECANCELED at once; an op in the kernel gets an
// IORING_OP_ASYNC_CANCEL on its own ring (Op::ring) keyed by its user_data (the Op's address).
// The cancel SQE is submitted under that ring's submitMutex_, which every submission of a new op
// to the ring also needs, and the kernel resolves an async cancel while it is submitted, so the
// address cannot name a newer op of that ring that reused it (a cancel never looks at another
// ring).
#include "backend.h"

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#define IOCP_HAVE_IO_URING 1
#endif
#endif

#ifdef IOCP_HAVE_IO_URING

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "file_slots.h"
#include "tracked.h"

namespace iocp {
namespace io {

namespace {

// The kernel carries each Op's address from the submitting thread to the reaper: the SQ tail's
// release store and the CQ tail's acquire load order them, through the kernel, which
// ThreadSanitizer cannot see. These annotations tell it about that edge (no code otherwise).
#if defined(__SANITIZE_THREAD__)
#define IOCP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IOCP_TSAN 1
#endif
#endif
#ifdef IOCP_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
inline void handedToKernel(const void* op) { __tsan_release(const_cast<void*>(op)); }
inline void backFromKernel(const void* op) { __tsan_acquire(const_cast<void*>(op)); }
#else
inline void handedToKernel(const void*) {}
inline void backFromKernel(const void*) {}
#endif

constexpr uint64_t kInternal = 0;  // user_data of cancel SQEs: their CQEs are ignored
constexpr uint64_t kStop = 1;      // user_data of the NOP that ends the reaper
constexpr size_t kInlineReap = 64; // CQEs a submitting thread takes per pass, after its submit

int sysSetup(unsigned entries, io_uring_params* params) {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, params));
}
int sysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags) {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, nullptr, 0));
}
int sysRegister(int fd, unsigned opcode, void* arg, unsigned count) {
  return static_cast<int>(::syscall(__NR_io_uring_register, fd, opcode, arg, count));
}

unsigned loadAcquire(const unsigned* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void storeRelease(unsigned* p, unsigned v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

class IoUringBackend;

// One io_uring instance and its reaper thread. Submissions of a thread go to the ring its slot
// names (ringFor); an op remembers its ring (Op::ring) so that its cancel goes there.
class Ring final : public SlotTable {
 public:
  // Sets up the ring; on failure `error` says what failed and the object must be discarded.
  Ring(IoUringBackend& backend, unsigned entries, const char** error);
  ~Ring() override;  // the backend drained every op first; stops the reaper

  // SlotTable: clears `slot` if it holds the file of `id`. Takes submitMutex_.
  void forget(int slot, uint64_t id) noexcept override;

  bool ok() const { return ok_; }

  // Backend::submit for ops[0..count) on this ring. Takes submitMutex_, then the backend's mutex_.
  void submit(Op* const* ops, size_t count);

  // Marks the in-flight ops of this ring that `match` selects as cancelled: those still in
  // overflow_ leave it and are appended to `unstarted` (the caller completes them), those in the
  // kernel get an IORING_OP_ASYNC_CANCEL. Returns how many it marked.
  template <typename Match>
  size_t cancelWhere(Match match, std::vector<Op*>& unstarted);

  // Starts what overflow_ holds, if the backend is not paused (after setPaused(false)).
  void restart() {
    std::lock_guard<std::mutex> submitLock(submitMutex_);
    startLocked();
  }

 private:
  void reapInline();
  void wakeReaperLocked() {
    if (reaperParked_ && kernelEntries_ != 0 && inlineReapers_ == 0) reaperWake_.notify_one();
  }
  void startLocked();
  io_uring_sqe* nextSqeLocked();
  void prepare(io_uring_sqe* sqe, Op& op);
  bool registeredLocked(int slot, uint64_t id, int fd);
  void flushLocked() {
    if (pendingSqes_ != 0) enterLocked();
    wakeReaperLocked();
  }
  void enterLocked();
  size_t reapAvailable(io_uring_cqe* batch, size_t max, bool wait, bool* stop = nullptr);
  void reap();
  bool probe();

  IoUringBackend& backend_;
  bool ok_ = false;
  int ringFd_ = -1;
  bool single_ = false;
  void* sqMap_ = nullptr;
  void* cqMap_ = nullptr;
  size_t sqBytes_ = 0, cqBytes_ = 0, sqesBytes_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  unsigned* sqHead_ = nullptr;
  unsigned* sqTail_ = nullptr;
  unsigned* sqArray_ = nullptr;
  unsigned sqMask_ = 0, sqEntries_ = 0;
  unsigned* cqHead_ = nullptr;
  unsigned* cqTail_ = nullptr;
  unsigned cqMask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  unsigned cqLimit_ = 0;

  std::mutex submitMutex_;
  std::mutex cqMutex_;
  unsigned sqTailLocal_ = 0;     // our tail, published at flush (guarded by submitMutex_)
  unsigned pendingSqes_ = 0;     // written, not yet taken by the kernel (guarded by submitMutex_)
  unsigned kernelEntries_ = 0;   // SQEs submitted whose CQE is not reaped (guarded by submitMutex_)
  unsigned inlineReapers_ = 0;   // submitters between their submission and the end of their reap
                                 // (guarded by submitMutex_)
  bool reaperParked_ = false;    // the reaper sleeps on reaperWake_ (guarded by submitMutex_)
  // Registered files (file_slots.h): the id each slot holds a file for, 0 for none; empty when
  // the ring has no table (an old kernel). Guarded by submitMutex_.
  std::vector<uint64_t> slotIds_;
  std::condition_variable reaperWake_;
  std::deque<Op*> overflow_;     // tracked, not yet in the ring (guarded by the backend's mutex_)
  std::thread reaper_;
};

class IoUringBackend final : public TrackedBackend {
 public:
  // Sets up the first ring; on failure `error` says what failed and the object must be discarded.
  IoUringBackend(unsigned entries, const char** error) : entries_(entries) {
    unsigned cores = std::thread::hardware_concurrency();
    ringCount_ = cores == 0 ? 1 : cores < kMaxRings ? cores : kMaxRings;
    auto first = std::make_unique<Ring>(*this, entries, error);
    if (!first->ok()) return;
    rings_[0].store(first.release(), std::memory_order_release);
    ok_ = true;
  }

  ~IoUringBackend() override {
    if (ok_) drain(nullptr, nullptr, -1);
    for (auto& slot : rings_) delete slot.load(std::memory_order_acquire);
  }

  bool ok() const { return ok_; }

  BackendKind kind() const noexcept override { return BackendKind::IoUring; }
  const char* name() const noexcept override { return "io_uring"; }

  void submit(Op* const* ops, size_t count) override {
    if (count == 0) return;
    ringFor().submit(ops, count);
  }

  size_t cancel(const Port* port, int userFd, bool matchOverlapped, uint64_t overlapped) override {
    return cancelWhere([&](const Op* op) {
      return op->port.get() == port && op->userFd == userFd &&
             (!matchOverlapped || op->packet.overlapped == overlapped);
    });
  }

  void drain(const Port* port, const void* owner, int userFd) override {
    cancelWhere([&](const Op* op) { return matches(op, port, owner, userFd); });
    waitNone(port, owner, userFd);
  }

  void setPaused(bool paused) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      paused_ = paused;
    }
    forEachRing([](Ring& ring) { ring.restart(); });
  }

 private:
  friend class Ring;
  static constexpr unsigned kMaxRings = 4;

  // The ring of the calling thread, so that two threads submitting at once run their reads in
  // parallel (one ring serializes submissions: the kernel's uring_lock, and reads of cached pages
  // complete inside io_uring_enter). A thread takes a slot at its first submission: the slot with
  // the fewest live threads (process-wide; a thread gives its slot up when it exits). A ring that
  // cannot be set up leaves its threads on the first one.
  Ring& ringFor() {
    const unsigned index = ThreadSlot::mine() % ringCount_;
    Ring* ring = rings_[index].load(std::memory_order_acquire);
    if (ring != nullptr) return *ring;
    std::lock_guard<std::mutex> lock(ringsMutex_);
    ring = rings_[index].load(std::memory_order_relaxed);
    if (ring == nullptr && !failed_[index]) {
      const char* error = nullptr;
      auto made = std::make_unique<Ring>(*this, entries_, &error);
      if (made->ok()) {
        ring = made.release();
        rings_[index].store(ring, std::memory_order_release);
      } else {
        failed_[index] = true;
      }
    }
    return ring != nullptr ? *ring : *rings_[0].load(std::memory_order_relaxed);
  }

  // A thread's slot among kMaxRings, held until the thread exits.
  struct ThreadSlot {
    static std::atomic<unsigned> users[kMaxRings];  // live threads per slot
    int index = -1;
    static unsigned mine() {
      thread_local ThreadSlot slot;
      if (slot.index < 0) {
        const unsigned cores = std::thread::hardware_concurrency();
        const unsigned count = cores == 0 ? 1 : cores < kMaxRings ? cores : kMaxRings;
        unsigned best = 0;
        for (unsigned i = 1; i < count; ++i) {
          if (users[i].load(std::memory_order_relaxed) < users[best].load(std::memory_order_relaxed)) best = i;
        }
        users[best].fetch_add(1, std::memory_order_relaxed);  // a hint: a race only unbalances
        slot.index = static_cast<int>(best);
      }
      return static_cast<unsigned>(slot.index);
    }
    ~ThreadSlot() {
      if (index >= 0) users[index].fetch_sub(1, std::memory_order_relaxed);
    }
  };

  template <typename F>
  void forEachRing(F f) {
    for (auto& slot : rings_) {
      if (Ring* ring = slot.load(std::memory_order_acquire)) f(*ring);
    }
  }

  template <typename Match>
  size_t cancelWhere(Match match) {
    std::vector<Op*> unstarted;
    size_t matched = 0;
    forEachRing([&](Ring& ring) { matched += ring.cancelWhere(match, unstarted); });
    completeManyCancelled(unstarted);
    return matched;
  }

  void completeManyCancelled(const std::vector<Op*>& ops) {
    std::vector<long> results(ops.size(), -ECANCELED);
    completeMany(ops.data(), results.data(), ops.size());
  }

  const unsigned entries_;
  unsigned ringCount_ = 1;
  bool ok_ = false;
  std::atomic<Ring*> rings_[kMaxRings] = {};
  std::mutex ringsMutex_;             // creating a ring
  bool failed_[kMaxRings] = {};       // guarded by ringsMutex_
  bool paused_ = false;               // guarded by mutex_
};

std::atomic<unsigned> IoUringBackend::ThreadSlot::users[IoUringBackend::kMaxRings] = {};

Ring::Ring(IoUringBackend& backend, unsigned entries, const char** error) : backend_(backend) {
  io_uring_params params;
  std::memset(&params, 0, sizeof params);
  ringFd_ = sysSetup(entries, &params);
  if (ringFd_ < 0) {
    *error = errno == ENOSYS ? "io_uring_setup: not implemented by this kernel"
             : errno == EPERM ? "io_uring_setup: not permitted (seccomp or kernel.io_uring_disabled)"
                              : "io_uring_setup failed";
    return;
  }
  if (!(params.features & IORING_FEAT_NODROP)) {
    *error = "io_uring: kernel too old (no IORING_FEAT_NODROP)";
    return;
  }
  sqBytes_ = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  cqBytes_ = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  single_ = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single_) sqBytes_ = cqBytes_ = sqBytes_ > cqBytes_ ? sqBytes_ : cqBytes_;
  sqMap_ = ::mmap(nullptr, sqBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFd_, IORING_OFF_SQ_RING);
  if (sqMap_ == MAP_FAILED) { sqMap_ = nullptr; *error = "io_uring: mmap of the SQ ring failed"; return; }
  cqMap_ = single_ ? sqMap_
                   : ::mmap(nullptr, cqBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFd_, IORING_OFF_CQ_RING);
  if (cqMap_ == MAP_FAILED) { cqMap_ = nullptr; *error = "io_uring: mmap of the CQ ring failed"; return; }
  sqesBytes_ = params.sq_entries * sizeof(io_uring_sqe);
  void* sqes = ::mmap(nullptr, sqesBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFd_, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) { *error = "io_uring: mmap of the SQEs failed"; return; }
  sqes_ = static_cast<io_uring_sqe*>(sqes);
  char* sq = static_cast<char*>(sqMap_);
  sqHead_ = reinterpret_cast<unsigned*>(sq + params.sq_off.head);
  sqTail_ = reinterpret_cast<unsigned*>(sq + params.sq_off.tail);
  sqMask_ = *reinterpret_cast<unsigned*>(sq + params.sq_off.ring_mask);
  sqEntries_ = params.sq_entries;
  sqArray_ = reinterpret_cast<unsigned*>(sq + params.sq_off.array);
  char* cq = static_cast<char*>(cqMap_);
  cqHead_ = reinterpret_cast<unsigned*>(cq + params.cq_off.head);
  cqTail_ = reinterpret_cast<unsigned*>(cq + params.cq_off.tail);
  cqMask_ = *reinterpret_cast<unsigned*>(cq + params.cq_off.ring_mask);
  cqes_ = reinterpret_cast<io_uring_cqe*>(cq + params.cq_off.cqes);
  cqLimit_ = params.cq_entries;
  if (!probe()) {
    *error = "io_uring: the kernel lacks IORING_OP_READ/WRITE/FSYNC/ASYNC_CANCEL";
    return;
  }
  // A sparse table of registered files (every slot empty: -1), filled as operations name them.
  // Only with IORING_FEAT_RSRC_TAGS (5.13): before it, updating a table waited for the ring to
  // go idle. Without a table the ring submits on plain fds.
  if (params.features & IORING_FEAT_RSRC_TAGS) {
    try {
      std::vector<int> empty(FileSlots::kSlots, -1);
      if (sysRegister(ringFd_, IORING_REGISTER_FILES, empty.data(), FileSlots::kSlots) == 0) {
        slotIds_.assign(FileSlots::kSlots, 0);
        FileSlots::instance().attach(this);
      }
    } catch (const std::bad_alloc&) {
      slotIds_.clear();  // plain fds (the kernel's table, if registered, goes with the ring)
    }
  }
  reaper_ = std::thread([this] { reap(); });
  ok_ = true;
}

Ring::~Ring() {
  if (!slotIds_.empty()) FileSlots::instance().detach(this);
  if (ok_) {
    {
      std::lock_guard<std::mutex> lock(submitMutex_);
      io_uring_sqe* sqe = nextSqeLocked();  // the ring is empty after drain: there is room
      sqe->opcode = IORING_OP_NOP;
      sqe->user_data = kStop;
      ++kernelEntries_;
      flushLocked();  // wakes the reaper: nobody else submits any more
    }
    reaper_.join();
  }
  if (sqes_ != nullptr) ::munmap(sqes_, sqesBytes_);
  if (cqMap_ != nullptr && !single_) ::munmap(cqMap_, cqBytes_);
  if (sqMap_ != nullptr) ::munmap(sqMap_, sqBytes_);
  if (ringFd_ >= 0) ::close(ringFd_);
}

void Ring::submit(Op* const* ops, size_t count) {
  {
    std::lock_guard<std::mutex> submitLock(submitMutex_);
    {
      std::lock_guard<std::mutex> lock(backend_.mutex_);
      // Straight into the ring while nothing waits before them (FIFO) and the kernel has room.
      const bool direct = !backend_.paused_ && overflow_.empty();
      for (size_t i = 0; i < count; ++i) {
        Op* op = ops[i];
        backend_.trackLocked(op);
        op->ring = this;
        if (direct && kernelEntries_ < cqLimit_ && overflow_.empty()) {
          op->started = true;
          prepare(nextSqeLocked(), *op);
          ++kernelEntries_;
        } else {
          overflow_.push_back(op);
        }
      }
    }
    ++inlineReapers_;  // the reaper stays asleep: we take what this submission completes
    flushLocked();
  }
  reapInline();
}

template <typename Match>
size_t Ring::cancelWhere(Match match, std::vector<Op*>& unstarted) {
  size_t matched = 0;
  std::lock_guard<std::mutex> submitLock(submitMutex_);
  std::vector<Op*> inKernel;
  {
    std::lock_guard<std::mutex> lock(backend_.mutex_);
    const size_t before = unstarted.size();
    for (Op* op = backend_.head_; op != nullptr; op = op->next) {
      if (op->ring != this || op->cancelRequested || !match(op)) continue;
      op->cancelRequested = true;
      ++matched;
      (op->started ? inKernel : unstarted).push_back(op);
    }
    if (unstarted.size() != before) {
      std::deque<Op*> kept;
      for (Op* op : overflow_) {
        if (!op->cancelRequested) kept.push_back(op);
      }
      overflow_.swap(kept);
    }
  }
  // The cancel SQEs go in under submitMutex_, which every submission of a new op to this ring
  // also needs, and the kernel resolves an async cancel while it is submitted: the address
  // cannot name a newer op of this ring that reused it (another ring's cancel never sees it).
  for (Op* op : inKernel) {
    // Room for the cancel entry: wait for the reaper to free some when the kernel is full.
    while (kernelEntries_ >= cqLimit_) {
      flushLocked();
      submitMutex_.unlock();
      std::this_thread::yield();
      submitMutex_.lock();
    }
    io_uring_sqe* sqe = nextSqeLocked();
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = reinterpret_cast<uint64_t>(op);
    sqe->user_data = kInternal;
    ++kernelEntries_;
  }
  flushLocked();
  return matched;
}

// A read of cached pages completes inside io_uring_enter: its CQE is already there when the
// submitting thread returns. Taking it here posts it without waiting for the reaper to be
// scheduled (on a busy machine that can take a while), and without waking it. Passes until the
// CQ is empty or someone else holds it; then, if entries are left in the kernel and no other
// submitter is about to reap, the reaper waits for them. The caller counted itself in
// inlineReapers_; no lock is held.
void Ring::reapInline() {
  io_uring_cqe local[kInlineReap];
  while (reapAvailable(local, kInlineReap, false) == kInlineReap) {
  }
  std::lock_guard<std::mutex> submitLock(submitMutex_);
  --inlineReapers_;
  wakeReaperLocked();
}

// Moves ops from overflow_ into the ring while the kernel has room, and submits. submitMutex_
// is held.
void Ring::startLocked() {
  {
    std::lock_guard<std::mutex> lock(backend_.mutex_);
    while (!backend_.paused_ && !overflow_.empty() && kernelEntries_ < cqLimit_) {
      Op* op = overflow_.front();
      overflow_.pop_front();
      op->started = true;
      prepare(nextSqeLocked(), *op);
      ++kernelEntries_;
    }
  }
  flushLocked();
}

// The next free SQE, zeroed (submits what is pending to make room when the SQ is full).
// submitMutex_ is held.
io_uring_sqe* Ring::nextSqeLocked() {
  while (pendingSqes_ >= sqEntries_ || sqTailLocal_ - loadAcquire(sqHead_) >= sqEntries_) flushLocked();
  const unsigned index = sqTailLocal_ & sqMask_;
  io_uring_sqe* sqe = &sqes_[index];
  std::memset(sqe, 0, sizeof *sqe);
  sqArray_[index] = index;
  ++sqTailLocal_;
  ++pendingSqes_;
  return sqe;
}

// submitMutex_ is held.
void Ring::prepare(io_uring_sqe* sqe, Op& op) {
  switch (op.kind) {
    case OpKind::Read: sqe->opcode = IORING_OP_READ; break;
    case OpKind::Write: sqe->opcode = IORING_OP_WRITE; break;
    case OpKind::Fsync: sqe->opcode = IORING_OP_FSYNC; break;
  }
  if (op.fileSlot >= 0 && registeredLocked(op.fileSlot, op.fileId, op.fd)) {
    sqe->fd = op.fileSlot;
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    sqe->fd = op.fd;
  }
  if (op.kind != OpKind::Fsync) {
    sqe->addr = reinterpret_cast<uint64_t>(op.buffer);
    sqe->len = op.length;
    sqe->off = op.offset;
  }
  sqe->user_data = reinterpret_cast<uint64_t>(&op);
  handedToKernel(&op);
}

// Whether `slot` holds `fd`'s file, registered for `id` (registers it if the slot holds another id
// or nothing). The op holding `fd` keeps it open, so the file cannot close meanwhile; a slot is
// given to a new id only after the old one was forgotten here. submitMutex_ is held.
bool Ring::registeredLocked(int slot, uint64_t id, int fd) {
  if (slotIds_.empty()) return false;
  if (slotIds_[slot] == id) return true;
  io_uring_files_update update;
  std::memset(&update, 0, sizeof update);
  update.offset = static_cast<unsigned>(slot);
  update.fds = reinterpret_cast<uint64_t>(&fd);
  if (sysRegister(ringFd_, IORING_REGISTER_FILES_UPDATE, &update, 1) != 1) return false;  // plain fd
  slotIds_[slot] = id;
  return true;
}

void Ring::forget(int slot, uint64_t id) noexcept {
  std::lock_guard<std::mutex> submitLock(submitMutex_);
  if (slotIds_.empty() || slotIds_[slot] != id) return;
  // Every op that named this file has completed (its DupFd is closing), so none of this ring's
  // requests uses the slot; the kernel drops its reference to the file here.
  int none = -1;
  io_uring_files_update update;
  std::memset(&update, 0, sizeof update);
  update.offset = static_cast<unsigned>(slot);
  update.fds = reinterpret_cast<uint64_t>(&none);
  while (sysRegister(ringFd_, IORING_REGISTER_FILES_UPDATE, &update, 1) < 0 && errno == EINTR) {
  }
  slotIds_[slot] = 0;
}

// Publishes the SQEs written since the last flush and hands them to the kernel. submitMutex_
// is held.
void Ring::enterLocked() {
  storeRelease(sqTail_, sqTailLocal_);  // the SQEs above are written before the kernel sees the tail
  while (pendingSqes_ != 0) {
    const int submitted = sysEnter(ringFd_, pendingSqes_, 0, 0);
    if (submitted >= 0) {
      pendingSqes_ -= static_cast<unsigned>(submitted);
      if (submitted == 0) break;  // nothing taken: retried at the next flush
      continue;
    }
    if (errno == EINTR) continue;
    // EAGAIN / EBUSY: the kernel is short of memory or has completions to hand back first;
    // the entries stay in the SQ and go with the next flush (the reaper flushes after reaping).
    break;
  }
}

// Takes up to `max` posted CQEs (blocking on cqMutex_ when `wait`, else only if it is free),
// completes their ops (one completeMany per kInlineReap), gives their ring entries back and
// refills the ring from overflow_. Returns how many CQEs it took; `*stop` (if given) is set when
// the reaper's stop NOP was among them. Call it with no lock held.
size_t Ring::reapAvailable(io_uring_cqe* batch, size_t max, bool wait, bool* stop) {
  size_t count = 0;
  {
    std::unique_lock<std::mutex> cqLock(cqMutex_, std::defer_lock);
    if (wait) {
      cqLock.lock();
    } else if (!cqLock.try_lock()) {
      return 0;
    }
    unsigned head = *cqHead_;
    const unsigned tail = loadAcquire(cqTail_);  // CQEs up to tail are written
    for (; head != tail && count < max; ++head) batch[count++] = cqes_[head & cqMask_];
    storeRelease(cqHead_, head);  // we are done reading those entries
  }
  if (count == 0) return 0;
  bool stopped = false;
  Op* ops[kInlineReap];
  long results[kInlineReap];
  size_t pending = 0;
  for (size_t i = 0; i < count; ++i) {
    const io_uring_cqe& cqe = batch[i];
    if (cqe.user_data == kStop) {
      stopped = true;
    } else if (cqe.user_data != kInternal) {
      Op* op = reinterpret_cast<Op*>(cqe.user_data);
      backFromKernel(op);
      ops[pending] = op;
      results[pending] = cqe.res;
      if (++pending == kInlineReap) {
        backend_.completeMany(ops, results, pending);
        pending = 0;
      }
    }
  }
  backend_.completeMany(ops, results, pending);
  std::lock_guard<std::mutex> submitLock(submitMutex_);
  kernelEntries_ -= static_cast<unsigned>(count);
  if (!stopped) startLocked();
  if (stop != nullptr) *stop = stopped;
  return count;
}

void Ring::reap() {
  std::vector<io_uring_cqe> batch(cqLimit_);
  bool stop = false;
  while (!stop) {
    {
      // Asleep outside the kernel while there is nothing to wait for there, or a submitting
      // thread will take it (see the comment at the top).
      std::unique_lock<std::mutex> submitLock(submitMutex_);
      while (kernelEntries_ == 0 || inlineReapers_ != 0) {
        reaperParked_ = true;
        reaperWake_.wait(submitLock);
        reaperParked_ = false;
      }
    }
    if (sysEnter(ringFd_, 0, 1, IORING_ENTER_GETEVENTS) < 0 && errno != EINTR && errno != EAGAIN &&
        errno != EBUSY) {
      continue;  // nothing to do but wait again
    }
    // The stop NOP is submitted only once nothing else is in flight and nobody submits (the
    // destructor), so no inline reap can take it: it always comes here.
    reapAvailable(batch.data(), batch.size(), true, &stop);
  }
}

bool Ring::probe() {
  const unsigned ops = 64;
  std::vector<char> storage(sizeof(io_uring_probe) + ops * sizeof(io_uring_probe_op), 0);
  io_uring_probe* p = reinterpret_cast<io_uring_probe*>(storage.data());
  if (sysRegister(ringFd_, IORING_REGISTER_PROBE, p, ops) < 0) return false;
  for (unsigned op : {unsigned(IORING_OP_READ), unsigned(IORING_OP_WRITE), unsigned(IORING_OP_FSYNC),
                      unsigned(IORING_OP_ASYNC_CANCEL), unsigned(IORING_OP_NOP)}) {
    if (op > p->last_op || !(p->ops[op].flags & IO_URING_OP_SUPPORTED)) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<Backend> makeIoUringBackend(unsigned entries, const char** why) {
  const char* error = nullptr;
  auto backend = std::make_unique<IoUringBackend>(entries, &error);
  if (!backend->ok()) {
    if (why != nullptr) *why = error != nullptr ? error : "io_uring: setup failed";
    return nullptr;
  }
  return backend;
}

}  // namespace io
}  // namespace iocp

#else  // no io_uring on this platform

namespace iocp {
namespace io {
std::unique_ptr<Backend> makeIoUringBackend(unsigned, const char** why) {
  if (why != nullptr) *why = "io_uring: not available on this platform";
  return nullptr;
}
}  // namespace io
}  // namespace iocp

#endif
