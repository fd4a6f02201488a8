#include "service.h"

#include <cerrno>

#include "file_slots.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace iocp {
namespace io {

namespace {

void closeFd(int fd) {
#ifndef _WIN32
  ::close(fd);
#else
  (void)fd;
#endif
}

}  // namespace

DupFd::DupFd(int duplicate) : fd(duplicate) { slot = FileSlots::instance().take(&slotId); }

DupFd::~DupFd() {
  // Out of every ring's table first: the file is closed once this returns.
  if (slot >= 0) FileSlots::instance().give(slot, slotId);
  closeFd(fd);
}

IoService::IoService(unsigned threadPoolThreads, unsigned ringEntries, Preference processDefault)
    : threads_(threadPoolThreads), ringEntries_(ringEntries), processDefault_(processDefault) {}

IoService::~IoService() {
  // Backends drain on destruction (every op completes before the ring or the pool goes away).
  ring_.reset();
  pool_.reset();
  ports_.clear();  // closes every duplicate (no op holds one: the backends are gone)
}

Backend* IoService::backendLocked(BackendKind kind, const char** why) {
  if (kind == BackendKind::ThreadPool) {
    if (!pool_) pool_ = makeThreadPoolBackend(threads_);
    return pool_.get();
  }
  if (!ringTried_) {
    ringTried_ = true;
    ring_ = makeIoUringBackend(ringEntries_, &ringWhy_);
  }
  if (!ring_ && why != nullptr) *why = ringWhy_;
  return ring_.get();
}

Backend* IoService::backend(BackendKind kind, const char** why) {
  std::lock_guard<std::mutex> lock(mutex_);
  return backendLocked(kind, why);
}

Backend* IoService::automatic(const char** why) {
  std::lock_guard<std::mutex> lock(mutex_);
  Backend* ring = backendLocked(BackendKind::IoUring, why);
  return ring != nullptr ? ring : backendLocked(BackendKind::ThreadPool, why);
}

std::vector<Backend*> IoService::backends() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Backend*> out;
  if (ring_) out.push_back(ring_.get());
  if (pool_) out.push_back(pool_.get());
  return out;
}

void IoService::sweepLocked() {
  for (auto it = ports_.begin(); it != ports_.end();) {
    if (it->second.port.expired()) {
      it = ports_.erase(it);  // no op can be in flight (every op holds its port): closes the duplicates
    } else {
      ++it;
    }
  }
}

IoService::PortIo* IoService::findLocked(const Port* port) {
  auto it = ports_.find(port);
  if (it == ports_.end()) return nullptr;
  std::shared_ptr<Port> alive = it->second.port.lock();
  if (!alive || alive.get() != port) return nullptr;  // a dead port's address, reused
  return &it->second;
}

IoStatus IoService::configure(const std::shared_ptr<Port>& port, Preference preference, const char** why) {
  std::lock_guard<std::mutex> lock(mutex_);
  sweepLocked();
  PortIo& io = ports_[port.get()];
  if (io.port.expired()) io = PortIo{port, Preference::Auto, nullptr, {}};
  if (io.backend != nullptr) return IoStatus::AlreadyAssociated;
  if (preference == Preference::IoUring && backendLocked(BackendKind::IoUring, why) == nullptr) {
    return IoStatus::Unavailable;
  }
  io.preference = preference;
  return IoStatus::Ok;
}

IoStatus IoService::associate(const std::shared_ptr<Port>& port, int fd, uint64_t key, uint32_t keyFlags,
                              const char** why, int* error) {
#ifdef _WIN32
  (void)port; (void)fd; (void)key; (void)keyFlags; (void)why; (void)error;
  return IoStatus::Unavailable;
#else
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoStatus::BadFd;
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return IoStatus::NotFile;
  if (port->stats().capacity != 0) return IoStatus::Capacity;
  std::lock_guard<std::mutex> lock(mutex_);
  sweepLocked();
  PortIo& io = ports_[port.get()];
  if (io.port.expired()) io = PortIo{port, Preference::Auto, nullptr, {}};
  auto existing = io.files.find(fd);
  if (existing != io.files.end()) {
    // The same number may name a new file now (the old one was closed without dissociate): the
    // stale association gives way; a live one is an error, as a second
    // CreateIoCompletionPort on one handle is.
    struct stat old;
    if (::fstat(existing->second.dup->fd, &old) == 0 && old.st_dev == st.st_dev && old.st_ino == st.st_ino) {
      return IoStatus::AlreadyAssociated;
    }
    io.files.erase(existing);  // the duplicate closes once its last op is done
  }
  if (io.backend == nullptr) {
    Preference preference = io.preference != Preference::Auto ? io.preference : processDefault_;
    switch (preference) {
      case Preference::ThreadPool: io.backend = backendLocked(BackendKind::ThreadPool, why); break;
      case Preference::IoUring: io.backend = backendLocked(BackendKind::IoUring, why); break;
      case Preference::Auto: {
        io.backend = backendLocked(BackendKind::IoUring, nullptr);
        if (io.backend == nullptr) io.backend = backendLocked(BackendKind::ThreadPool, why);
        break;
      }
    }
    if (io.backend == nullptr) return IoStatus::Unavailable;
  }
  const int dupFd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dupFd < 0) {
    *error = errno;
    return IoStatus::SystemError;
  }
  io.files.emplace(fd, Association{std::make_shared<DupFd>(dupFd), key, keyFlags, static_cast<uint64_t>(st.st_dev),
                                   static_cast<uint64_t>(st.st_ino)});
  return IoStatus::Ok;
#endif
}

IoStatus IoService::dissociate(const Port* port, int fd) {
  Backend* backend = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    PortIo* io = findLocked(port);
    if (io == nullptr) return IoStatus::NotAssociated;
    auto it = io->files.find(fd);
    if (it == io->files.end()) return IoStatus::NotAssociated;
    io->files.erase(it);  // no new lookup finds it; the duplicate closes with its last op
    backend = io->backend;
  }
  // Ops already submitted on the duplicate: cancel them and wait for them.
  backend->drain(port, nullptr, fd);
  return IoStatus::Ok;
}

IoStatus IoService::lookup(const Port* port, int fd, Target* target) {
#ifndef _WIN32
  // The caller's fd must be open: an operation on a closed fd is refused, as it is on Windows
  // (even while its association remains: that runs on the duplicate). It must also still name
  // the file associated: a number closed and reused by another file is not associated (yet), and
  // the old file is never read through it. (The fstat needs no lock.)
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoStatus::BadFd;
  std::lock_guard<std::mutex> lock(mutex_);
  PortIo* io = findLocked(port);
  if (io == nullptr) return IoStatus::NotAssociated;
  auto it = io->files.find(fd);
  if (it == io->files.end()) return IoStatus::NotAssociated;
  if (static_cast<uint64_t>(st.st_dev) != it->second.dev || static_cast<uint64_t>(st.st_ino) != it->second.ino) {
    return IoStatus::NotAssociated;
  }
  *target = Target{it->second.dup, it->second.dup->fd, it->second.key, it->second.keyFlags, io->backend};
  return IoStatus::Ok;
#else
  (void)port; (void)fd; (void)target;
  return IoStatus::Unavailable;
#endif
}

void IoService::closePort(const Port* port) {
  Backend* backend = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = ports_.find(port);
    if (it == ports_.end()) return;
    backend = it->second.backend;
    ports_.erase(it);  // the duplicates close with the last op on each
  }
  if (backend != nullptr) backend->drain(port, nullptr, -1);
}

void IoService::drainOwner(const void* owner) {
  for (Backend* backend : backends()) backend->drain(nullptr, owner);
}

Backend* IoService::backendOf(const Port* port) {
  std::lock_guard<std::mutex> lock(mutex_);
  PortIo* io = findLocked(port);
  return io != nullptr ? io->backend : nullptr;
}

}  // namespace io
}  // namespace iocp
