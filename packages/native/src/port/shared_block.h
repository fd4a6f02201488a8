// A block of 32-bit words that C++ and JS share (see shared_layout.h). Native-owned and
// reference-counted: the engine holds a std::shared_ptr, and every JS view of the block holds
// one too (the binding's ArrayBuffer finalizer drops it), so the memory outlives every thread
// and every native producer that can still touch it, in whichever order they go away.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace iocp {

class SharedBlock {
 public:
  // `words` zeroed words, 64-byte aligned. Throws std::bad_alloc.
  static std::shared_ptr<SharedBlock> make(size_t words) {
    const size_t bytes = (words * sizeof(uint32_t) + 63) & ~size_t(63);
    // Aligned operator new (C++17): throws std::bad_alloc, and a test can make it fail.
    void* memory = ::operator new(bytes, std::align_val_t(64));
    std::atomic<uint32_t>* array = static_cast<std::atomic<uint32_t>*>(memory);
    for (size_t i = 0; i < words; ++i) new (&array[i]) std::atomic<uint32_t>(0);
    SharedBlock* block;
    try {
      block = new SharedBlock(array, words);
    } catch (...) {
      ::operator delete(memory, std::align_val_t(64));
      throw;
    }
    return std::shared_ptr<SharedBlock>(block);  // if this throws, it deletes `block` (and memory)
  }

  ~SharedBlock() { ::operator delete(words_, std::align_val_t(64)); }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;

  std::atomic<uint32_t>& operator[](size_t i) noexcept { return words_[i]; }
  const std::atomic<uint32_t>& operator[](size_t i) const noexcept { return words_[i]; }
  std::atomic<uint32_t>* words() noexcept { return words_; }
  size_t size() const noexcept { return size_; }
  size_t byteLength() const noexcept { return size_ * sizeof(uint32_t); }

 private:
  SharedBlock(std::atomic<uint32_t>* words, size_t size) : words_(words), size_(size) {}
  std::atomic<uint32_t>* words_;
  size_t size_;
};

// A JS Uint32Array element and a std::atomic<uint32_t> must be the same four bytes.
static_assert(sizeof(std::atomic<uint32_t>) == 4, "atomic<uint32_t> must be a plain word");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "atomic<uint32_t> must be lock-free");

}  // namespace iocp
