// A growable FIFO ring of packets. Not thread-safe: the owning Port guards it with its mutex.
// It grows by doubling and never shrinks, so once a port has seen its peak depth, pushing and
// popping never allocate.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "packet.h"

namespace iocp {

class PacketRing {
 public:
  PacketRing() = default;
  PacketRing(const PacketRing&) = delete;
  PacketRing& operator=(const PacketRing&) = delete;

  size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

  // Appends at the tail. May allocate (only when the ring is full); throws std::bad_alloc.
  void pushBack(const Packet& packet) {
    if (count_ == capacity_) grow();
    slots_[(head_ + count_) & (capacity_ - 1)] = packet;
    ++count_;
  }

  // Inserts at the head (a packet handed back by a thread that could not take it).
  void pushFront(const Packet& packet) {
    if (count_ == capacity_) grow();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    slots_[head_] = packet;
    ++count_;
  }

  // Removes the head. Precondition: !empty(). Never allocates.
  Packet popFront() noexcept {
    Packet packet = slots_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --count_;
    return packet;
  }

 private:
  void grow() {
    size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
    std::unique_ptr<Packet[]> slots(new Packet[capacity]);
    for (size_t i = 0; i < count_; ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(slots);
    capacity_ = capacity;
    head_ = 0;
  }

  std::unique_ptr<Packet[]> slots_;
  size_t capacity_ = 0;  // always 0 or a power of two
  size_t head_ = 0;
  size_t count_ = 0;
};

}  // namespace iocp
