#include "op_pool.h"

#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define IOCP_OP_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOCP_OP_POOL_OFF 1
#endif
#endif

namespace iocp {
namespace io {

OpPool& OpPool::instance() {
  static OpPool* pool = new OpPool;
  return *pool;
}

void OpPool::take(Op** out, size_t count) {
  size_t taken = 0;
#ifndef IOCP_OP_POOL_OFF
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (; taken < count && free_ != nullptr; ++taken) {
      Op* op = free_;
      free_ = op->next;
      --count_;
      op->next = nullptr;
      out[taken] = op;
    }
  }
#endif
  try {
    for (; taken < count; ++taken) out[taken] = new Op;
  } catch (const std::bad_alloc&) {
    give(out, taken);
    throw;
  }
}

void OpPool::give(Op* const* ops, size_t count) noexcept {
  if (count == 0) return;
#ifdef IOCP_OP_POOL_OFF
  for (size_t i = 0; i < count; ++i) delete ops[i];
#else
  // Cleared outside the lock: dropping the port may destroy it.
  Op* first = nullptr;
  Op* last = nullptr;
  for (size_t i = 0; i < count; ++i) {
    Op* op = ops[i];
    *op = Op{};
    op->next = first;
    if (first == nullptr) last = op;
    first = op;
  }
  Op* extra = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (count_ + count <= kKeep) {
      last->next = free_;
      free_ = first;
      count_ += count;
    } else {
      extra = first;
    }
  }
  while (extra != nullptr) {  // the pool is full: these go back to the allocator
    Op* next = extra->next;
    delete extra;
    extra = next;
  }
#endif
}

}  // namespace io
}  // namespace iocp
