/**
 * The shared-memory layout, as JS constants: word indices into a port's control block, a ring
 * slot and a thread's consumer block. The addon describes the same layout (its `LAYOUT`, from
 * packages/native/src/port/shared_layout.h), and {@link checkLayout} compares the two when the
 * addon loads, so a mismatched build fails at once instead of corrupting packets. They are
 * literal constants here so that V8 folds them into the fast path.
 */

/** Control block words (ControlWord): the producer line, the consumer line, the shared line. */
export const K_TAIL_LOCK = 0
export const K_POSTED_LO = 1
export const K_POSTED_HI = 2
export const K_HEAD_LOCK = 16
export const K_DEQUEUED_LO = 17
export const K_DEQUEUED_HI = 18
export const K_PAYLOADS_QUEUED = 19
export const K_STATE = 32
export const K_RUNNING = 33
export const K_WAITING = 34
export const K_ASYNC_WAITING = 35
export const K_RING_MASK = 36
export const K_RING_GEN = 37
export const K_CONCURRENCY = 38
export const K_CAPACITY = 39
export const K_TRACK_HELD = 40
export const K_TOKEN = 41
export const K_CONTROL_WORDS = 48
/**
 * K_TAIL_LOCK and K_HEAD_LOCK each hold a lock's state in bits 0-1 (0 free, 1 held, 2 held with
 * a thread parked on the word) and a position in bits 2-31: `word >>> 2`, and positions wrap at
 * 2^30 (queued = (tail - head) & POSITION_MASK).
 */
export const POSITION_MASK = 0x3fff_ffff

/** Words of a ring slot (SlotWord). */
export const S_KEY_LO = 0
export const S_KEY_HI = 1
export const S_OVERLAPPED_LO = 2
export const S_OVERLAPPED_HI = 3
export const S_BYTES = 4
export const S_FLAGS = 5
export const S_PAYLOAD_LO = 6
export const S_PAYLOAD_HI = 7
/** log2 of the words per slot (8). */
export const SLOT_SHIFT = 3

/** Consumer block words (ConsumerWord). */
export const C_ASSOCIATED = 0
export const C_RUNNING = 1
export const C_HELD_IN_BLOCK = 2
/** The token of the port whose lock C_LOCK_MARK names (see shared-port.ts, "A thread that dies in a lock"). */
export const C_LOCK_PORT = 3
/** 1 + the lock word JS holds on this thread, its negation while JS releases it, else 0. */
export const C_LOCK_MARK = 4
export const C_HELD_SLOT = 8
export const C_CONSUMER_WORDS = 16

/** Status codes of the addon (negative numbers; counts >= 0 are themselves). */
export const OK = 0
export const TIMEOUT = 0
export const CLOSED = -1
export const FULL = -2
export const TERMINATING = -3

const EXPECTED: Readonly<Record<string, number>> = {
  kTailLock: K_TAIL_LOCK,
  kHeadLock: K_HEAD_LOCK,
  kState: K_STATE,
  kRunning: K_RUNNING,
  kConcurrency: K_CONCURRENCY,
  kWaiting: K_WAITING,
  kAsyncWaiting: K_ASYNC_WAITING,
  kPositionMask: POSITION_MASK,
  kRingMask: K_RING_MASK,
  kRingGen: K_RING_GEN,
  kCapacity: K_CAPACITY,
  kPostedLo: K_POSTED_LO,
  kPostedHi: K_POSTED_HI,
  kDequeuedLo: K_DEQUEUED_LO,
  kDequeuedHi: K_DEQUEUED_HI,
  kPayloadsQueued: K_PAYLOADS_QUEUED,
  kTrackHeld: K_TRACK_HELD,
  kToken: K_TOKEN,
  kControlWords: K_CONTROL_WORDS,
  kKeyLo: S_KEY_LO,
  kKeyHi: S_KEY_HI,
  kOverlappedLo: S_OVERLAPPED_LO,
  kOverlappedHi: S_OVERLAPPED_HI,
  kBytes: S_BYTES,
  kFlags: S_FLAGS,
  kPayloadLo: S_PAYLOAD_LO,
  kPayloadHi: S_PAYLOAD_HI,
  kSlotWords: 1 << SLOT_SHIFT,
  kAssociated: C_ASSOCIATED,
  kConsumerRunning: C_RUNNING,
  kHeldInBlock: C_HELD_IN_BLOCK,
  kLockPort: C_LOCK_PORT,
  kLockMark: C_LOCK_MARK,
  kHeldSlot: C_HELD_SLOT,
  kConsumerWords: C_CONSUMER_WORDS,
  STATUS_CLOSED: -CLOSED,
  STATUS_FULL: -FULL,
  STATUS_TERMINATING: -TERMINATING,
}

/** Throws if the addon's layout differs from these constants in any entry. */
export function checkLayout(actual: Readonly<Record<string, number>> | undefined): void {
  const keys = new Set([...Object.keys(EXPECTED), ...Object.keys(actual ?? {})])
  for (const key of keys) {
    if (actual?.[key] !== EXPECTED[key]) {
      throw new Error(
        `@iocp/native does not match this version of @iocp/core: layout entry ${key} is ` +
          `${String(actual?.[key])} in the addon, ${String(EXPECTED[key])} here (rebuild @iocp/native)`,
      )
    }
  }
}
