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

OpPool::Local& OpPool::local() {
  thread_local Local mine;
  return mine;
}

OpPool::Local::~Local() {
  if (free == nullptr) return;
  Op* last = free;
  while (last->next != nullptr) last = last->next;
  OpPool::instance().giveShared(free, last, count);
  free = nullptr;
  count = 0;
}

void OpPool::take(Op** out, size_t count) {
  size_t taken = 0;
#ifndef IOCP_OP_POOL_OFF
  Local& mine = local();
  for (; taken < count && mine.free != nullptr; ++taken) {
    Op* op = mine.free;
    mine.free = op->next;
    --mine.count;
    op->next = nullptr;
    out[taken] = op;
  }
  if (taken < count) taken += takeShared(out + taken, count - taken);
#endif
  try {
    for (; taken < count; ++taken) out[taken] = new Op;
  } catch (const std::bad_alloc&) {
    give(out, taken);
    throw;
  }
}

size_t OpPool::takeShared(Op** out, size_t count) {
  size_t taken = 0;
  std::lock_guard<std::mutex> lock(mutex_);
  for (; taken < count && free_ != nullptr; ++taken) {
    Op* op = free_;
    free_ = op->next;
    --count_;
    op->next = nullptr;
    out[taken] = op;
  }
  return taken;
}

void OpPool::give(Op* const* ops, size_t count) noexcept {
  if (count == 0) return;
#ifdef IOCP_OP_POOL_OFF
  for (size_t i = 0; i < count; ++i) delete ops[i];
#else
  // Cleared outside any lock: dropping the port may destroy it. What the thread's own list has
  // room for stays there; the rest goes to the shared list.
  Local& mine = local();
  Op* first = nullptr;
  Op* last = nullptr;
  size_t shared = 0;
  for (size_t i = 0; i < count; ++i) {
    Op* op = ops[i];
    *op = Op{};
    if (mine.count < kLocal) {
      op->next = mine.free;
      mine.free = op;
      ++mine.count;
      continue;
    }
    op->next = first;
    if (first == nullptr) last = op;
    first = op;
    ++shared;
  }
  if (shared != 0) giveShared(first, last, shared);
#endif
}

void OpPool::giveShared(Op* first, Op* last, size_t count) noexcept {
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
}

}  // namespace io
}  // namespace iocp
