// The unit of work that moves through a port: IOCP's (bytes, key, overlapped) triple plus an
// optional owned payload. Plain C++, no N-API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace iocp {

// A payload is one heap block: this header followed by `length` bytes. It is allocated once at
// post (the only allocation a payload costs) and freed by whoever ends up owning it: the consumer
// (the binding hands the block to JS as an external ArrayBuffer and frees it in the finalizer),
// the caller of close(), or the port's destructor if nobody ever dequeued it.
struct Payload {
  size_t length;

  unsigned char* bytes() noexcept { return reinterpret_cast<unsigned char*>(this + 1); }

  // Copies `length` bytes from `source`. Throws std::bad_alloc when memory is exhausted.
  static Payload* copyOf(const void* source, size_t length) {
    void* block = std::malloc(sizeof(Payload) + (length == 0 ? 1 : length));
    if (block == nullptr) throw std::bad_alloc();
    Payload* payload = static_cast<Payload*>(block);
    payload->length = length;
    if (length != 0) std::memcpy(payload->bytes(), source, length);
    return payload;
  }

  static void destroy(Payload* payload) noexcept { std::free(payload); }
};

// The port never interprets key, overlapped, bytes or flags: like the system with IOCP packets,
// it only moves them. `flags` is the binding's (it records whether key and overlapped were given
// as bigints). `data` is owned by the packet until it is handed out.
struct Packet {
  uint64_t key = 0;
  uint64_t overlapped = 0;
  uint32_t bytes = 0;
  uint32_t flags = 0;
  Payload* data = nullptr;
};

// What a port remembers of a packet a thread holds: everything but the payload, whose ownership
// went to the consumer.
struct HeldPacket {
  uint64_t key;
  uint64_t overlapped;
  uint32_t bytes;
  uint32_t flags;
};

}  // namespace iocp
