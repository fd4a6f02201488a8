// The native limit of the io scenario: what one thread of this machine does on the bench's file,
// with no Node in the way, and the page-cache residency probe the scenario reports.
//
//   io-limit residency FILE                          {"resident": pages, "pages": pages}  (mincore)
//   io-limit pread FILE BLOCK RANDOM SECONDS          a pread loop, one op at a time
//   io-limit uring FILE BLOCK RANDOM DEPTH SECONDS    raw io_uring, DEPTH reads in flight, one thread
//
// RANDOM 1: offsets uniformly random, BLOCK-aligned; 0: sequential, wrapping at the end.
// The run prints {"ops": n, "seconds": s} on stdout. Exit status 2 if io_uring cannot be set up
// here (with the reason on stderr), 1 on any other failure.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#define HAVE_URING 1
#endif
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Offsets {
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  uint64_t blocks, block, next = 0;
  bool random;
  Offsets(uint64_t size, uint64_t blockSize, bool rnd) : blocks(size / blockSize), block(blockSize), random(rnd) {}
  uint64_t operator()() {
    if (!random) {
      const uint64_t offset = (next % blocks) * block;
      ++next;
      return offset;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (state % blocks) * block;
  }
};

// Page-aligned buffers: malloc's large blocks start 16 bytes into a page, and a misaligned
// destination makes the kernel's copy several times slower, which would understate the limit.
struct AlignedBuffer {
  char* data;
  explicit AlignedBuffer(size_t bytes) : data(static_cast<char*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096))) {
    if (data == nullptr) std::exit(1);
    std::memset(data, 0, bytes);
  }
  ~AlignedBuffer() { std::free(data); }
};

int openOrDie(const char* path, uint64_t* size) {
  const int fd = ::open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::fprintf(stderr, "io-limit: cannot open %s: %s\n", path, std::strerror(errno));
    std::exit(1);
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

int residency(const char* path) {
  uint64_t size = 0;
  const int fd = openOrDie(path, &size);
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t pages = (size + page - 1) / page;
  size_t resident = 0;
  if (size > 0) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 1;
    std::vector<unsigned char> vec(pages);
    if (::mincore(map, size, vec.data()) != 0) return 1;
    for (unsigned char v : vec) resident += v & 1;
    ::munmap(map, size);
  }
  std::printf("{\"resident\": %zu, \"pages\": %zu}\n", resident, pages);
  return 0;
}

int preadLoop(const char* path, uint64_t block, bool random, double seconds) {
  uint64_t size = 0;
  const int fd = openOrDie(path, &size);
  AlignedBuffer buffer(block);
  Offsets next(size, block, random);
  uint64_t ops = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (::pread(fd, buffer.data, block, static_cast<off_t>(next())) < 0) return 1;
      ++ops;
    }
    if (Clock::now() >= end) break;
  }
  std::printf("{\"ops\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(ops),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

#ifdef HAVE_URING
int uringLoop(const char* path, uint64_t block, bool random, unsigned depth, double seconds) {
  uint64_t size = 0;
  const int fd = openOrDie(path, &size);
  io_uring_params params;
  std::memset(&params, 0, sizeof params);
  const int ring = static_cast<int>(::syscall(__NR_io_uring_setup, depth, &params));
  if (ring < 0) {
    std::fprintf(stderr, "io-limit: io_uring_setup: %s\n", std::strerror(errno));
    return 2;
  }
  const size_t sqBytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  const size_t cqBytes = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  const size_t ringBytes = sqBytes > cqBytes ? sqBytes : cqBytes;  // IORING_FEAT_SINGLE_MMAP (5.4+)
  char* sq = static_cast<char*>(::mmap(nullptr, ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING));
  io_uring_sqe* sqes = static_cast<io_uring_sqe*>(::mmap(nullptr, params.sq_entries * sizeof(io_uring_sqe),
                                                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES));
  if (sq == MAP_FAILED || sqes == MAP_FAILED || !(params.features & IORING_FEAT_SINGLE_MMAP)) return 2;
  unsigned* sqTail = reinterpret_cast<unsigned*>(sq + params.sq_off.tail);
  unsigned* sqArray = reinterpret_cast<unsigned*>(sq + params.sq_off.array);
  const unsigned sqMask = *reinterpret_cast<unsigned*>(sq + params.sq_off.ring_mask);
  unsigned* cqHead = reinterpret_cast<unsigned*>(sq + params.cq_off.head);
  unsigned* cqTail = reinterpret_cast<unsigned*>(sq + params.cq_off.tail);
  const unsigned cqMask = *reinterpret_cast<unsigned*>(sq + params.cq_off.ring_mask);
  io_uring_cqe* cqes = reinterpret_cast<io_uring_cqe*>(sq + params.cq_off.cqes);
  AlignedBuffer buffers(block * depth);
  Offsets next(size, block, random);
  unsigned tail = *sqTail;
  unsigned pending = 0;
  auto queue = [&](unsigned slot) {
    io_uring_sqe* sqe = &sqes[tail & sqMask];
    std::memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_READ;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<uint64_t>(buffers.data + slot * block);
    sqe->len = static_cast<unsigned>(block);
    sqe->off = next();
    sqe->user_data = slot;
    sqArray[tail & sqMask] = tail & sqMask;
    ++tail;
    ++pending;
  };
  for (unsigned slot = 0; slot < depth; ++slot) queue(slot);
  uint64_t ops = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  bool stopping = false;
  unsigned inFlight = 0;
  for (;;) {
    __atomic_store_n(sqTail, tail, __ATOMIC_RELEASE);
    inFlight += pending;
    if (::syscall(__NR_io_uring_enter, ring, pending, 1, IORING_ENTER_GETEVENTS, nullptr, 0) < 0 && errno != EINTR) return 1;
    pending = 0;
    unsigned head = *cqHead;
    const unsigned cqTailNow = __atomic_load_n(cqTail, __ATOMIC_ACQUIRE);
    for (; head != cqTailNow; ++head) {
      const io_uring_cqe& cqe = cqes[head & cqMask];
      if (cqe.res < 0) return 1;
      ++ops;
      --inFlight;
      if (!stopping) queue(static_cast<unsigned>(cqe.user_data));
    }
    __atomic_store_n(cqHead, head, __ATOMIC_RELEASE);
    if (!stopping && (ops & 63) == 0 && Clock::now() >= end) stopping = true;
    if (!stopping && Clock::now() >= end) stopping = true;
    if (stopping && inFlight == 0 && pending == 0) break;
  }
  std::printf("{\"ops\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(ops),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "residency") == 0) return residency(argv[2]);
  if (argc >= 6 && std::strcmp(argv[1], "pread") == 0) {
    return preadLoop(argv[2], std::strtoull(argv[3], nullptr, 10), argv[4][0] == '1', std::atof(argv[5]));
  }
  if (argc >= 7 && std::strcmp(argv[1], "uring") == 0) {
#ifdef HAVE_URING
    return uringLoop(argv[2], std::strtoull(argv[3], nullptr, 10), argv[4][0] == '1',
                     static_cast<unsigned>(std::atoi(argv[5])), std::atof(argv[6]));
#else
    std::fprintf(stderr, "io-limit: io_uring is not available on this platform\n");
    return 2;
#endif
  }
  std::fprintf(stderr, "usage: io-limit residency FILE | pread FILE BLOCK RANDOM SECONDS | uring FILE BLOCK RANDOM DEPTH SECONDS\n");
  return 1;
}
