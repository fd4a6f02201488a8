// Tests of the overlapped I/O backends (../src/io), each run against both backends (io_uring
// only where the kernel allows it; the line says which ran). Every completion is counted: the
// port receives exactly one packet per operation, and every keeper is released exactly once.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../src/io/backend.h"
#include "../src/io/service.h"
#include "harness.h"
#include "support.h"

using namespace iocp;
using namespace iocp::io;

namespace {

constexpr size_t kFileSize = 1 << 20;

// A temporary file of kFileSize bytes where byte i is (i * 7 + i / 4096) & 0xff.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char name[] = "/tmp/iocp-cctest-XXXXXX";
    fd = ::mkstemp(name);
    path = name;
    std::vector<unsigned char> bytes(kFileSize);
    for (size_t i = 0; i < kFileSize; ++i) bytes[i] = expected(i);
    size_t done = 0;
    while (done < kFileSize) done += static_cast<size_t>(::write(fd, bytes.data() + done, kFileSize - done));
  }
  ~TempFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  static unsigned char expected(size_t i) { return static_cast<unsigned char>((i * 7 + i / 4096) & 0xff); }
};

struct CountingKeeper : Keeper {
  std::atomic<int>* released;
  explicit CountingKeeper(std::atomic<int>* counter) : released(counter) {}
  void release() noexcept override {
    released->fetch_add(1, std::memory_order_relaxed);
    delete this;
  }
};

Op* readOp(const std::shared_ptr<Port>& port, int fd, void* buffer, uint32_t length, uint64_t offset,
           uint64_t overlapped, std::atomic<int>* released, const void* owner = nullptr) {
  Op* op = new Op;
  op->kind = OpKind::Read;
  op->fd = fd;
  op->userFd = fd;
  op->buffer = buffer;
  op->length = length;
  op->offset = offset;
  op->port = port;
  op->packet.key = 42;
  op->packet.overlapped = overlapped;
  op->owner = owner;
  op->keeper = released != nullptr ? new CountingKeeper(released) : nullptr;
  return op;
}

// Both backends where they run; io_uring is skipped (and said so) where the kernel refuses it.
std::vector<std::unique_ptr<Backend>> backends() {
  std::vector<std::unique_ptr<Backend>> out;
  out.push_back(makeThreadPoolBackend(3));
  const char* why = nullptr;
  std::unique_ptr<Backend> ring = makeIoUringBackend(64, &why);
  if (ring) out.push_back(std::move(ring));
  else std::printf("  (io_uring skipped: %s)\n", why);
  return out;
}

// Runs `body(service, preference)` with an IoService that prefers each backend in turn; io_uring
// is skipped (and said so) where the kernel refuses it.
template <typename Body>
void forEachService(Body body) {
  for (Preference pref : {Preference::ThreadPool, Preference::IoUring}) {
    IoService service(2, 32, pref);
    const char* why = nullptr;
    if (pref == Preference::IoUring && service.backend(BackendKind::IoUring, &why) == nullptr) {
      std::printf("  (io_uring skipped: %s)\n", why);
      continue;
    }
    body(service, pref);
  }
}

// Takes `count` packets from `port` as `self` (one consumer per thread for the whole test: a
// consumer counts as running on the port until its next get).
std::vector<Packet> take(Port& port, size_t count, Consumer& self) {
  std::vector<Packet> got;
  Packet out[64];
  while (got.size() < count) {
    GetResult r = port.get(self, out, count - got.size() < 64 ? count - got.size() : 64, -1);
    if (r.status != Status::Ok) break;
    got.insert(got.end(), out, out + r.count);
  }
  return got;
}

// A packet is posted before its op releases its keeper and leaves the backend (see
// TrackedBackend::complete), so a consumer can hold every packet while a backend thread still
// touches the op's keeper. Tests wait here before they count releases or let the counters and
// buffers on their stack go.
void settle(Backend& backend) { backend.drain(nullptr, nullptr, -1); }

}  // namespace

// Many operations in flight from four threads at once, drained by two consumers: every read
// completes once, with the right bytes in its buffer.
TEST(io_many_reads_in_flight_complete_once_with_their_data) {
  TempFile file;
  for (auto& backend : backends()) {
    auto port = cctest::makePort(2);
    constexpr int kThreads = 4, kPerThread = 1500;
    constexpr uint32_t kLen = 4096;
    std::vector<unsigned char> buffers(size_t(kThreads) * kPerThread * kLen);
    std::vector<uint64_t> offsets(size_t(kThreads) * kPerThread);
    std::atomic<int> released{0};
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; ++t) {
      producers.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < kPerThread; i += 10) {
          Op* batch[10];
          for (int j = 0; j < 10; ++j) {
            const uint64_t id = uint64_t(t) * kPerThread + i + j;
            offsets[id] = (rng() % (kFileSize / kLen)) * kLen + (rng() % 64);
            batch[j] = readOp(port, file.fd, &buffers[id * kLen], kLen, offsets[id], id, &released);
          }
          backend->submit(batch, 10);
        }
      });
    }
    // Two consumers drain until the port closes, once every completion was taken. (Not a sentinel
    // each: one get of up to 64 can take both sentinels and leave the other consumer parked.)
    std::vector<Packet> a, b;
    std::atomic<size_t> taken{0};
    auto drainer = [&](std::vector<Packet>& into, uint64_t id) {
      Consumer self(id);
      Packet out[64];
      for (;;) {
        GetResult r = port->get(self, out, 64, -1);
        if (r.status != Status::Ok) return;
        into.insert(into.end(), out, out + r.count);
        taken.fetch_add(r.count, std::memory_order_relaxed);
      }
    };
    std::thread consumerA([&] { drainer(a, 1); });
    std::thread consumerB([&] { drainer(b, 2); });
    for (auto& p : producers) p.join();
    cctest::waitUntil([&] { return taken.load() == size_t(kThreads) * kPerThread; });
    CHECK(port->close().empty());
    consumerA.join();
    consumerB.join();
    CHECK(a.size() + b.size() == size_t(kThreads) * kPerThread);
    std::vector<int> seen(size_t(kThreads) * kPerThread, 0);
    a.insert(a.end(), b.begin(), b.end());
    for (const Packet& p : a) {
      CHECK(p.key == 42);
      CHECK((p.flags & kFlagIoError) == 0);
      const uint64_t id = p.overlapped;
      CHECK(id < seen.size());
      seen[id] += 1;
      const uint64_t expect = kFileSize - offsets[id] < kLen ? kFileSize - offsets[id] : kLen;
      CHECK(p.bytes == expect);
      for (uint32_t k = 0; k < p.bytes; k += 511) CHECK(buffers[id * kLen + k] == TempFile::expected(offsets[id] + k));
    }
    for (int s : seen) CHECK(s == 1);
    settle(*backend);
    CHECK(released.load() == kThreads * kPerThread);
    CHECK(backend->stats().inFlight == 0);
    std::printf("  %s: %d reads\n", backend->name(), kThreads * kPerThread);
  }
}

// CancelIoEx: while the backend is paused nothing starts, so every op is pending; cancelling
// one overlapped value, then the rest of the fd, completes each with ECANCELED exactly once.
TEST(io_cancel_completes_pending_ops_with_ecanceled) {
  TempFile file;
  for (auto& backend : backends()) {
    auto port = cctest::makePort(1);
    Consumer self(1);
    std::atomic<int> released{0};
    std::vector<unsigned char> buffer(100 * 512);
    backend->setPaused(true);
    std::vector<Op*> ops;
    for (int i = 0; i < 100; ++i) ops.push_back(readOp(port, file.fd, &buffer[i * 512], 512, i * 512, i, &released));
    backend->submit(ops.data(), ops.size());
    const size_t cancelled = backend->cancel(port.get(), file.fd, true, 7);
    if (cancelled != 1) std::printf("  %s: cancel(fd, 7) matched %zu\n", backend->name(), cancelled);
    CHECK(cancelled == 1);
    std::vector<Packet> first = take(*port, 1, self);
    CHECK(first.size() == 1 && first[0].overlapped == 7);
    CHECK((first[0].flags & kFlagIoError) != 0 && first[0].bytes == ECANCELED);
    CHECK(backend->cancel(port.get(), file.fd + 1000, false, 0) == 0);  // another fd: nothing
    CHECK(backend->cancel(port.get(), file.fd, false, 0) == 99);
    std::vector<Packet> rest = take(*port, 99, self);
    CHECK(rest.size() == 99);
    for (const Packet& p : rest) CHECK((p.flags & kFlagIoError) != 0 && p.bytes == ECANCELED && p.overlapped != 7);
    settle(*backend);
    CHECK(released.load() == 100);
    CHECK(backend->stats().cancelled == 100);
    backend->setPaused(false);
  }
}

// io_uring only: a read that does not complete inside io_uring_enter (an empty pipe: the backend
// accepts any descriptor; the service admits only files) is taken by the reaper, which sleeps
// outside the kernel until the submitting thread has reaped what its submission completed. Each
// of two threads submits on its own pipe (threads are spread over the rings, up to one per
// core); one pipe is then written to, and its read completes with those bytes through the
// reaper; the other is cancelled from a third thread (the main one), whose cancel must reach the
// ring the read was submitted to; the rest of the ops complete normally.
TEST(io_uring_reaper_and_cancel_reach_every_ring) {
  const char* why = nullptr;
  std::unique_ptr<Backend> backend = makeIoUringBackend(64, &why);
  if (!backend) {
    std::printf("  (io_uring skipped: %s)\n", why);
    return;
  }
  auto port = cctest::makePort(1);
  Consumer self(1);
  std::atomic<int> released{0};
  int pipes[2][2];
  CHECK(::pipe(pipes[0]) == 0 && ::pipe(pipes[1]) == 0);
  unsigned char buffers[2][8] = {};
  // The submitters stay alive until the end: the kernel cancels what a thread still has pending
  // in io_uring when it exits (the binding drains a thread's ops before it goes, see teardown).
  std::atomic<int> submitted{0};
  std::atomic<bool> finish{false};
  std::thread submitters[2];
  for (int t = 0; t < 2; ++t) {
    submitters[t] = std::thread([&, t] {
      Op* op = readOp(port, pipes[t][0], buffers[t], sizeof buffers[t], 0, 100 + t, &released);
      op->offset = static_cast<uint64_t>(-1);  // a pipe has no position: read at the current one
      backend->submit(&op, 1);
      submitted.fetch_add(1, std::memory_order_release);
      while (!finish.load(std::memory_order_acquire)) std::this_thread::yield();
    });
  }
  while (submitted.load(std::memory_order_acquire) != 2) std::this_thread::yield();
  CHECK(backend->stats().inFlight == 2);  // neither completed inside its submission
  // Step 1: bytes arrive on pipe 0; only the reaper can see its read complete.
  CHECK(::write(pipes[0][1], "complete", 8) == 8);
  std::vector<Packet> first = take(*port, 1, self);
  CHECK(first.size() == 1 && first[0].overlapped == 100 && first[0].bytes == 8 && (first[0].flags & kFlagIoError) == 0);
  CHECK(std::memcmp(buffers[0], "complete", 8) == 0);
  // Step 2: the read on pipe 1 never completes by itself: cancel it from this thread.
  CHECK(backend->cancel(port.get(), pipes[1][0], false, 0) == 1);
  std::vector<Packet> second = take(*port, 1, self);
  CHECK(second.size() == 1 && second[0].overlapped == 101);
  CHECK((second[0].flags & kFlagIoError) != 0 && second[0].bytes == ECANCELED);
  settle(*backend);
  CHECK(released.load() == 2);
  CHECK(backend->stats().inFlight == 0);
  finish.store(true, std::memory_order_release);
  for (std::thread& t : submitters) t.join();
  for (auto& p : pipes) {
    ::close(p[0]);
    ::close(p[1]);
  }
}

// Errors come back as packets: a read on a write-only descriptor fails with EBADF, and the
// packet carries the errno with kFlagIoError.
TEST(io_failed_operation_is_an_error_packet) {
  TempFile file;
  const int writeOnly = ::open(file.path.c_str(), O_WRONLY);
  for (auto& backend : backends()) {
    auto port = cctest::makePort(1);
    Consumer self(1);
    unsigned char buffer[16];
    Op* op = readOp(port, writeOnly, buffer, sizeof buffer, 0, 9, nullptr);
    backend->submit(&op, 1);
    std::vector<Packet> got = take(*port, 1, self);
    CHECK(got.size() == 1 && got[0].overlapped == 9);
    CHECK((got[0].flags & kFlagIoError) != 0 && got[0].bytes == EBADF);
  }
  ::close(writeOnly);
}

// write, fsync, then read back what was written.
TEST(io_write_fsync_read_round_trip) {
  TempFile file;
  for (auto& backend : backends()) {
    auto port = cctest::makePort(1);
    Consumer self(1);
    char text[] = "overlapped!";
    Op* write = readOp(port, file.fd, text, sizeof text, 4096 * 3, 1, nullptr);
    write->kind = OpKind::Write;
    backend->submit(&write, 1);
    CHECK(take(*port, 1, self).at(0).bytes == sizeof text);
    Op* sync = readOp(port, file.fd, nullptr, 0, 0, 2, nullptr);
    sync->kind = OpKind::Fsync;
    backend->submit(&sync, 1);
    std::vector<Packet> synced = take(*port, 1, self);
    CHECK(synced.at(0).overlapped == 2 && (synced[0].flags & kFlagIoError) == 0);
    char back[sizeof text] = {};
    Op* read = readOp(port, file.fd, back, sizeof back, 4096 * 3, 3, nullptr);
    backend->submit(&read, 1);
    CHECK(take(*port, 1, self).at(0).bytes == sizeof text);
    CHECK(std::memcmp(back, text, sizeof text) == 0);
  }
}

// Teardown with I/O pending: ops held in flight (paused), then the port is closed and the
// backend destroyed. Nothing completes into freed memory (ASan), every keeper is released once,
// and the closed port drops the packets rather than queueing them.
TEST(io_teardown_with_io_pending_releases_everything) {
  TempFile file;
  for (int round = 0; round < 2; ++round) {
    std::atomic<int> released{0};
    auto port = cctest::makePort(1);
    Consumer self(1);
    {
      std::vector<std::unique_ptr<Backend>> all = backends();
      if (round >= static_cast<int>(all.size())) break;
      std::unique_ptr<Backend> backend = std::move(all[round]);
      all.clear();
      std::vector<unsigned char>* buffer = new std::vector<unsigned char>(500 * 256);
      backend->setPaused(true);
      std::vector<Op*> ops;
      for (int i = 0; i < 500; ++i) ops.push_back(readOp(port, file.fd, buffer->data() + i * 256, 256, i * 256, i, &released));
      backend->submit(ops.data(), ops.size());
      CHECK(backend->stats().inFlight == 500);
      for (Packet& p : port->close()) Payload::destroy(p.data);
      backend.reset();  // drains: every op completes (dropped by the closed port) before it returns
      delete buffer;    // nothing may still point into it
    }
    CHECK(released.load() == 500);
    CHECK(port.use_count() == 1);  // no op kept the port
  }
}

// drain(owner) (a thread going away) waits only for that owner's ops, and leaves the others.
TEST(io_drain_owner_leaves_other_owners_ops) {
  TempFile file;
  for (auto& backend : backends()) {
    auto port = cctest::makePort(1);
    Consumer self(1);
    std::atomic<int> released{0};
    std::vector<unsigned char> buffer(20 * 256);
    int ownerA = 0, ownerB = 0;
    backend->setPaused(true);
    std::vector<Op*> ops;
    for (int i = 0; i < 20; ++i) ops.push_back(readOp(port, file.fd, &buffer[i * 256], 256, 0, i, &released, i % 2 ? &ownerA : &ownerB));
    backend->submit(ops.data(), ops.size());
    backend->drain(nullptr, &ownerA, -1);
    CHECK(released.load() == 10);
    CHECK(backend->stats().inFlight == 10);
    backend->setPaused(false);
    std::vector<Packet> got = take(*port, 20, self);
    CHECK(got.size() == 20);
    int cancelled = 0;
    for (const Packet& p : got) cancelled += (p.flags & kFlagIoError) != 0 ? 1 : 0;
    CHECK(cancelled == 10);
    settle(*backend);
    CHECK(released.load() == 20);
  }
}

// The service: an association runs on a duplicate, so closing the caller's fd neither breaks
// in-flight I/O nor lets a later op through; dissociate and closePort release everything.
TEST(io_service_associations) {
  TempFile file;
  forEachService([&](IoService& service, Preference pref) {
    const char* why = nullptr;
    auto port = cctest::makePort(1);
    Consumer self(1);
    const int fd = ::open(file.path.c_str(), O_RDONLY);
    int error = 0;
    Target target{};
    CHECK(service.lookup(port.get(), fd, &target) == IoStatus::NotAssociated);
    CHECK(service.associate(port, fd, 5, 0, &why, &error) == IoStatus::Ok);
    CHECK(service.associate(port, fd, 5, 0, &why, &error) == IoStatus::AlreadyAssociated);
    CHECK(service.backendOf(port.get())->kind() ==
          (pref == Preference::IoUring ? BackendKind::IoUring : BackendKind::ThreadPool));
    CHECK(service.lookup(port.get(), fd, &target) == IoStatus::Ok && target.fd != fd && target.key == 5);
    int pipeFds[2];
    CHECK(::pipe(pipeFds) == 0);
    CHECK(service.associate(port, pipeFds[0], 1, 0, &why, &error) == IoStatus::NotFile);
    ::close(pipeFds[0]);
    ::close(pipeFds[1]);
    CHECK(service.associate(port, 9999, 1, 0, &why, &error) == IoStatus::BadFd);
    // In flight while the caller closes its fd: the op still reads the associated file.
    target.backend->setPaused(true);
    unsigned char buffer[100];
    Op* op = readOp(port, target.fd, buffer, sizeof buffer, 4096, 1, nullptr);
    op->userFd = fd;
    op->fdHolder = target.dup;
    std::weak_ptr<DupFd> held = target.dup;
    target.dup.reset();
    target.backend->submit(&op, 1);
    ::close(fd);
    CHECK(service.lookup(port.get(), fd, &target) == IoStatus::BadFd);
    target.backend->setPaused(false);
    std::vector<Packet> got = take(*port, 1, self);
    CHECK(got.at(0).bytes == sizeof buffer && got[0].key == 42);
    CHECK(buffer[0] == TempFile::expected(4096));
    service.closePort(port.get());
    CHECK(service.lookup(port.get(), fd, &target) != IoStatus::Ok);
    CHECK(held.expired());  // the duplicate closed with its association and its last op
  });
}

#if defined(__linux__)
#include <poll.h>
#include <sys/inotify.h>

namespace {

// One read of `length` bytes at 0 through the service, as the binding issues it (on the
// association's duplicate and its registered-file slot); the packet, once completed and settled.
Packet readThrough(IoService& service, const std::shared_ptr<Port>& port, int fd, unsigned char* buffer,
                   uint32_t length, Consumer& self) {
  Target target{};
  if (service.lookup(port.get(), fd, &target) != IoStatus::Ok) return Packet{};
  Op* op = readOp(port, target.fd, buffer, length, 0, 7, nullptr);
  op->userFd = fd;
  op->fdHolder = target.dup;
  op->fileSlot = target.dup->slot;
  op->fileId = target.dup->slotId;
  target.backend->submit(&op, 1);
  std::vector<Packet> got = take(*port, 1, self);
  settle(*target.backend);
  return got.empty() ? Packet{} : got[0];
}

// Whether an inotify close event (IN_CLOSE_*) is waiting on `watch`, after waiting up to
// `waitMs` for one (0: only look). Consumes the events read.
bool closeEvent(int watch, int waitMs) {
  pollfd p{watch, POLLIN, 0};
  if (::poll(&p, 1, waitMs) != 1) return false;
  alignas(inotify_event) char events[4096];
  const ssize_t n = ::read(watch, events, sizeof events);
  for (ssize_t at = 0; at < n;) {
    const inotify_event* e = reinterpret_cast<const inotify_event*>(events + at);
    if (e->mask & (IN_CLOSE_NOWRITE | IN_CLOSE_WRITE)) return true;
    at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
  }
  return false;
}

}  // namespace

// A file's number closed and reused by another file never reads the old file: until the number is
// associated again it is not associated, and once it is, reads return the new file's bytes, also
// on io_uring where the old file was registered in a slot the new one may take. When an
// association ends, nothing keeps its file open: not the duplicate, not a ring's registered slot
// (the kernel reports the file's last close, which a slot left registered would prevent).
TEST(io_closed_and_reused_fd_never_reads_the_old_file_and_registered_files_are_let_go) {
  TempFile first;  // byte i is TempFile::expected(i)
  char name[] = "/tmp/iocp-cctest-XXXXXX";
  const int writer = ::mkstemp(name);
  const std::string second = name;
  std::vector<unsigned char> fill(8192, 0xab);
  CHECK(::write(writer, fill.data(), fill.size()) == static_cast<ssize_t>(fill.size()));
  ::close(writer);
  forEachService([&](IoService& service, Preference pref) {
    const char* why = nullptr;
    auto port = cctest::makePort(1);
    Consumer self(1);
    int error = 0;
    const int watch = ::inotify_init1(IN_CLOEXEC);
    CHECK(watch >= 0);
    CHECK(::inotify_add_watch(watch, first.path.c_str(), IN_CLOSE_NOWRITE | IN_CLOSE_WRITE) >= 0);
    CHECK(::inotify_add_watch(watch, second.c_str(), IN_CLOSE_NOWRITE | IN_CLOSE_WRITE) >= 0);
    unsigned char buffer[100];

    // The first file on number N, read once (on io_uring, that registers it in a slot).
    const int fd = ::open(first.path.c_str(), O_RDONLY);
    CHECK(service.associate(port, fd, 5, 0, &why, &error) == IoStatus::Ok);
    Packet p = readThrough(service, port, fd, buffer, sizeof buffer, self);
    CHECK(p.key == 42 && p.bytes == sizeof buffer && buffer[99] == TempFile::expected(99));

    // Closed without dissociate: the association's duplicate keeps the file open (no close event).
    ::close(fd);
    CHECK(!closeEvent(watch, 0));
    Target target{};
    CHECK(service.lookup(port.get(), fd, &target) == IoStatus::BadFd);

    // The number is reused by the second file: not associated until it is associated again.
    const int reused = ::open(second.c_str(), O_RDONLY);
    CHECK(reused == fd);
    CHECK(service.lookup(port.get(), reused, &target) == IoStatus::NotAssociated);
    // Associated: the stale association gives way, and its file closes (duplicate and slot).
    CHECK(service.associate(port, reused, 6, 0, &why, &error) == IoStatus::Ok);
    CHECK(closeEvent(watch, 10000));
    std::memset(buffer, 0, sizeof buffer);
    p = readThrough(service, port, reused, buffer, sizeof buffer, self);
    CHECK(p.bytes == sizeof buffer && buffer[0] == 0xab && buffer[99] == 0xab);

    // Its association ends: once the caller's fd is closed too, nothing holds the file.
    ::close(reused);
    CHECK(!closeEvent(watch, 0));
    CHECK(service.dissociate(port.get(), reused) == IoStatus::Ok);
    CHECK(closeEvent(watch, 10000));
    ::close(watch);
    std::printf("  %s\n", pref == Preference::IoUring ? "io_uring" : "thread-pool");
  });
  ::unlink(second.c_str());
}
#endif

#if defined(__linux__)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

// What a container's seccomp profile does to io_uring: io_uring_setup fails with EPERM. In a
// child process with such a filter, the io_uring backend reports why it cannot run, and 'auto'
// picks the thread pool, which then works.
TEST(io_auto_falls_back_to_the_thread_pool_when_seccomp_refuses_io_uring) {
  TempFile file;
  const pid_t child = ::fork();
  CHECK(child >= 0);
  if (child == 0) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      ::_exit(10);
    }
    const char* why = nullptr;
    if (makeIoUringBackend(16, &why) != nullptr) ::_exit(11);
    if (why == nullptr || std::strstr(why, "not permitted") == nullptr) ::_exit(12);
    IoService service(2, 16, Preference::Auto);
    auto port = cctest::makePort(1);
    int error = 0;
    if (service.associate(port, file.fd, 1, 0, &why, &error) != IoStatus::Ok) ::_exit(13);
    if (service.backendOf(port.get())->kind() != BackendKind::ThreadPool) ::_exit(14);
    IoService forced(2, 16, Preference::Auto);
    if (forced.configure(port, Preference::IoUring, &why) != IoStatus::Unavailable) ::_exit(15);
    Target target{};
    if (service.lookup(port.get(), file.fd, &target) != IoStatus::Ok) ::_exit(16);
    unsigned char buffer[64];
    Op* op = readOp(port, target.fd, buffer, sizeof buffer, 8192, 3, nullptr);
    op->fdHolder = target.dup;
    target.backend->submit(&op, 1);
    Consumer self(1);
    std::vector<Packet> got = take(*port, 1, self);
    if (got.size() != 1 || got[0].bytes != sizeof buffer || buffer[0] != TempFile::expected(8192)) ::_exit(17);
    ::_exit(0);
  }
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("  child exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#endif
