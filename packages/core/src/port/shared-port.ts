/**
 * The packet path in shared memory: `post()` and a `get()` that finds a packet it may take run
 * here, in JS, on the port's control block and ring, under the port's lock word, with no call
 * into native code. The engine (packages/native/src/port/port.cpp) runs the same steps on the
 * same words under the same lock, so the two are one algorithm in two languages; the cctest
 * `js_mirror.h` replays these steps in C++ so that ThreadSanitizer checks the whole protocol.
 *
 * The protocol (docs/architecture.md, "The shared-memory packet path"):
 * - Lock: `compareExchange(kLock, 0, 1)`, polled up to {@link LOCK_POLLS} times while it is taken;
 *   then the call is made in native code instead (which spins, then parks). Unlock: `exchange(kLock, 0)`, and a native wake only when the old
 *   value was 2 (a thread sleeps on the lock). Atomics are sequentially consistent, so the
 *   plain typed-array accesses between them are ordered with every other holder's.
 * - Post takes the fast path only when the port is open, the ring has room, and no linked waiter
 *   could take the packet (the queue is non-empty, or nobody waits, or nobody may run): handing a
 *   packet to a waiter means waking it, which is native code.
 * - Get takes the fast path only when this thread's consumer block names this port (the engine
 *   sets that in a native get, and clears it for getAsync, blocking() and moves), the port is
 *   open, and the concurrency rule lets the thread run once its previous delivery ends.
 * - Batches (`postMany` without payloads, `getManyInto`) move between a batch and the ring
 *   with `TypedArray.set`: a batch packet has the stride of a ring slot (8 words).
 * - Anything else answers {@link SLOW}, and the caller makes the call in native code, which
 *   applies every rule. The fast path never decides anything the engine would decide otherwise.
 */
import type { NativeBinding, NativePort } from '@iocp/native'
import {
  C_ASSOCIATED,
  C_HELD_IN_BLOCK,
  C_HELD_SLOT,
  C_RUNNING,
  K_ASYNC_WAITING,
  K_CAPACITY,
  K_CONCURRENCY,
  K_DEQUEUED_HI,
  K_DEQUEUED_LO,
  K_HEAD,
  K_LOCK,
  K_POSTED_HI,
  K_POSTED_LO,
  K_RING_GEN,
  K_RING_MASK,
  K_RUNNING,
  K_STATE,
  K_TAIL,
  K_TOKEN,
  K_TRACK_HELD,
  K_WAITING,
  K_CONTROL_WORDS,
  FULL,
  OK,
  SLOT_SHIFT,
  S_BYTES,
  S_FLAGS,
  S_KEY_HI,
  S_KEY_LO,
  S_OVERLAPPED_HI,
  S_OVERLAPPED_LO,
  S_PAYLOAD_HI,
  S_PAYLOAD_LO,
} from './layout.js'
import { FLAG_KEY_BIGINT, FLAG_OVERLAPPED_BIGINT, makePacket, u64Of, type Packet } from './packet.js'

/** The fast path does not apply: make the call in native code. */
export const SLOW = -100

const TWO_32 = 0x1_0000_0000
/** How often a JS call polls a taken lock before it makes the call in native code. */
const LOCK_POLLS = 64

/**
 * A control block whose lock is always held: with it, every call takes the native path. Used
 * where the runtime forbids the addon's external memory.
 */
function lockedControl(): Int32Array {
  const control = new Int32Array(K_CONTROL_WORDS)
  control[K_LOCK] = 1
  return control
}

/** One thread's view of a port's shared memory. */
export class SharedPort {
  readonly #native: NativePort
  readonly #binding: NativeBinding
  /** The control block. */
  readonly #control: Int32Array
  /** The ring, as of generation {@link SharedPort.#generation}. */
  #ring: Uint32Array
  #generation: number
  /** This thread's consumer block. */
  readonly #consumer: Int32Array
  readonly #token: number

  constructor(native: NativePort, binding: NativeBinding, consumer: Int32Array) {
    this.#native = native
    this.#binding = binding
    this.#consumer = consumer
    const control = native.control()
    this.#control = control === undefined ? lockedControl() : new Int32Array(control)
    this.#token = this.#control[K_TOKEN]!
    this.#ring = new Uint32Array(0)
    this.#generation = -1
    if (control !== undefined) this.#refreshRing()
  }

  /** Re-reads the ring after the engine replaced it (it grew). */
  #refreshRing(): void {
    const [ring, generation] = this.#native.ring()
    if (ring === undefined) return
    this.#ring = new Uint32Array(ring)
    this.#generation = generation
  }

  /** Whether this view of the ring is stale (a racy read: only a hint to refresh). */
  refreshIfStale(): void {
    if (Atomics.load(this.#control, K_RING_GEN) !== this.#generation && this.#generation !== -1) this.#refreshRing()
  }

  /**
   * The lock was taken: retry a few times before the call goes native. A critical section is a
   * few dozen instructions, so the holder is usually done within a few polls, and a poll is far
   * cheaper than a call into native code. Out of line, so that the fast paths stay small.
   */
  #lockContended(c: Int32Array): boolean {
    for (let i = 0; i < LOCK_POLLS; i++) {
      if (Atomics.load(c, K_LOCK) === 0 && Atomics.compareExchange(c, K_LOCK, 0, 1) === 0) return true
    }
    return false
  }

  #unlock(): void {
    if (Atomics.exchange(this.#control, K_LOCK, 0) === 2) this.#native.wakeLock()
  }

  /**
   * Posts a packet whose key and overlapped are numbers in [0, 2^53-1] and `bytes` a uint32,
   * with no payload. Returns {@link OK}, {@link FULL}, or {@link SLOW}.
   */
  post(key: number, bytes: number, overlapped: number): number {
    const c = this.#control
    if (Atomics.compareExchange(c, K_LOCK, 0, 1) !== 0 && !this.#lockContended(c)) return SLOW
    const head = c[K_HEAD]!
    const tail = c[K_TAIL]!
    const queued = (tail - head) | 0
    if (
      c[K_STATE] !== 0 ||
      c[K_RING_GEN] !== this.#generation ||
      queued > c[K_RING_MASK]! ||
      (queued === 0 && c[K_WAITING] !== 0 && (c[K_RUNNING]! < c[K_CONCURRENCY]! || c[K_ASYNC_WAITING] !== 0))
    ) {
      this.#unlock()
      return SLOW
    }
    const capacity = c[K_CAPACITY]! >>> 0
    if (capacity !== 0 && queued >>> 0 >= capacity) {
      this.#unlock()
      return FULL
    }
    const r = this.#ring
    const at = (tail & c[K_RING_MASK]!) << SLOT_SHIFT
    const keyLo = key >>> 0
    const overlappedLo = overlapped >>> 0
    r[at + S_KEY_LO] = keyLo
    r[at + S_KEY_HI] = (key - keyLo) / TWO_32
    r[at + S_OVERLAPPED_LO] = overlappedLo
    r[at + S_OVERLAPPED_HI] = (overlapped - overlappedLo) / TWO_32
    r[at + S_BYTES] = bytes
    r[at + S_FLAGS] = 0
    r[at + S_PAYLOAD_LO] = 0
    r[at + S_PAYLOAD_HI] = 0
    c[K_TAIL] = (tail + 1) | 0
    const posted = (c[K_POSTED_LO]! + 1) | 0
    c[K_POSTED_LO] = posted
    if (posted === 0) c[K_POSTED_HI] = (c[K_POSTED_HI]! + 1) | 0
    this.#unlock()
    return OK
  }

  /**
   * Posts `count` packets laid out like the ring (8 words each, no payloads, token words 0) in
   * one run, as the engine's postMany does once no waiter can take a packet. Returns how many
   * were posted (fewer than `count` only at the port's capacity), or {@link SLOW}.
   */
  postMany(words: Uint32Array, count: number): number {
    const c = this.#control
    if (Atomics.compareExchange(c, K_LOCK, 0, 1) !== 0 && !this.#lockContended(c)) return SLOW
    const head = c[K_HEAD]!
    const tail = c[K_TAIL]!
    const queued = (tail - head) | 0
    const slots = c[K_RING_MASK]! + 1
    let n = count
    const capacity = c[K_CAPACITY]! >>> 0
    if (capacity !== 0) n = Math.max(0, Math.min(n, capacity - (queued >>> 0)))
    if (
      c[K_STATE] !== 0 ||
      c[K_RING_GEN] !== this.#generation ||
      queued + n > slots ||
      (queued === 0 && c[K_WAITING] !== 0 && (c[K_RUNNING]! < c[K_CONCURRENCY]! || c[K_ASYNC_WAITING] !== 0))
    ) {
      this.#unlock()
      return SLOW
    }
    const r = this.#ring
    const start = tail & (slots - 1)
    const first = Math.min(n, slots - start)
    r.set(words.subarray(0, first << SLOT_SHIFT), start << SLOT_SHIFT)
    if (n > first) r.set(words.subarray(first << SLOT_SHIFT, n << SLOT_SHIFT), 0)
    c[K_TAIL] = (tail + n) | 0
    const lo = c[K_POSTED_LO]! >>> 0
    const sum = lo + n
    c[K_POSTED_LO] = sum | 0
    if (sum > 0xffff_ffff) c[K_POSTED_HI] = (c[K_POSTED_HI]! + 1) | 0
    this.#unlock()
    return n
  }

  /**
   * Takes up to `max` packets into `words` (8 words each) if this thread may, like
   * {@link SharedPort.get}: the thread counts once for the batch. Payload token words are
   * copied as they are; the caller exchanges them with `takePayload` and zeroes them. Returns
   * the count, or {@link SLOW} (also on a port that tracks held packets: its record is the
   * engine's to write for a batch).
   */
  getInto(words: Uint32Array, max: number): number {
    const b = this.#consumer
    if (b[C_ASSOCIATED] !== this.#token) return SLOW
    const c = this.#control
    if (Atomics.compareExchange(c, K_LOCK, 0, 1) !== 0 && !this.#lockContended(c)) return SLOW
    if (b[C_RUNNING] !== 0) {
      b[C_RUNNING] = 0
      c[K_RUNNING] = c[K_RUNNING]! - 1
    }
    const head = c[K_HEAD]!
    const queued = (c[K_TAIL]! - head) | 0
    if (
      c[K_STATE] !== 0 ||
      queued === 0 ||
      c[K_RUNNING]! >= c[K_CONCURRENCY]! ||
      c[K_RING_GEN] !== this.#generation ||
      c[K_TRACK_HELD] !== 0
    ) {
      this.#unlock()
      return SLOW
    }
    const n = Math.min(max, queued)
    const slots = c[K_RING_MASK]! + 1
    const r = this.#ring
    const start = head & (slots - 1)
    const first = Math.min(n, slots - start)
    words.set(r.subarray(start << SLOT_SHIFT, (start + first) << SLOT_SHIFT), 0)
    if (n > first) words.set(r.subarray(0, (n - first) << SLOT_SHIFT), first << SLOT_SHIFT)
    c[K_HEAD] = (head + n) | 0
    c[K_RUNNING] = c[K_RUNNING]! + 1
    b[C_RUNNING] = 1
    const lo = c[K_DEQUEUED_LO]! >>> 0
    const sum = lo + n
    c[K_DEQUEUED_LO] = sum | 0
    if (sum > 0xffff_ffff) c[K_DEQUEUED_HI] = (c[K_DEQUEUED_HI]! + 1) | 0
    this.#unlock()
    return n
  }

  /**
   * Takes the next packet if this thread may: it ends the thread's previous delivery and takes
   * the head of the queue when the concurrency rule lets it run. Returns the packet, or
   * `undefined` for {@link SLOW} (make the call in native code, which also sleeps if it must).
   */
  get(): Packet | undefined {
    const b = this.#consumer
    if (b[C_ASSOCIATED] !== this.#token) return undefined
    const c = this.#control
    if (Atomics.compareExchange(c, K_LOCK, 0, 1) !== 0 && !this.#lockContended(c)) return undefined
    // The previous delivery ends: the thread stops counting (the engine's stopRunningLocked).
    // If the call then goes native, the engine finds it stopped already.
    if (b[C_RUNNING] !== 0) {
      b[C_RUNNING] = 0
      c[K_RUNNING] = c[K_RUNNING]! - 1
    }
    const head = c[K_HEAD]!
    if (
      c[K_STATE] !== 0 ||
      head === c[K_TAIL] ||
      c[K_RUNNING]! >= c[K_CONCURRENCY]! ||
      c[K_RING_GEN] !== this.#generation
    ) {
      this.#unlock()
      return undefined
    }
    const r = this.#ring
    const at = (head & c[K_RING_MASK]!) << SLOT_SHIFT
    const keyLo = r[at + S_KEY_LO]!
    const keyHi = r[at + S_KEY_HI]!
    const overlappedLo = r[at + S_OVERLAPPED_LO]!
    const overlappedHi = r[at + S_OVERLAPPED_HI]!
    const bytes = r[at + S_BYTES]!
    const flags = r[at + S_FLAGS]!
    const payloadLo = r[at + S_PAYLOAD_LO]!
    const payloadHi = r[at + S_PAYLOAD_HI]!
    c[K_HEAD] = (head + 1) | 0
    c[K_RUNNING] = c[K_RUNNING]! + 1
    b[C_RUNNING] = 1
    const dequeued = (c[K_DEQUEUED_LO]! + 1) | 0
    c[K_DEQUEUED_LO] = dequeued
    if (dequeued === 0) c[K_DEQUEUED_HI] = (c[K_DEQUEUED_HI]! + 1) | 0
    if (c[K_TRACK_HELD] !== 0) {
      // The held record a pool recovers if this thread dies before its next get.
      b[C_HELD_SLOT + S_KEY_LO] = keyLo
      b[C_HELD_SLOT + S_KEY_HI] = keyHi
      b[C_HELD_SLOT + S_OVERLAPPED_LO] = overlappedLo
      b[C_HELD_SLOT + S_OVERLAPPED_HI] = overlappedHi
      b[C_HELD_SLOT + S_BYTES] = bytes
      b[C_HELD_SLOT + S_FLAGS] = flags
      b[C_HELD_IN_BLOCK] = 1
    }
    this.#unlock()
    if (flags === 0 && payloadLo === 0 && payloadHi === 0) {
      return makePacket(keyHi * TWO_32 + keyLo, bytes, overlappedHi * TWO_32 + overlappedLo, undefined)
    }
    return makePacket(
      u64Of(keyLo, keyHi, (flags & FLAG_KEY_BIGINT) !== 0),
      bytes,
      u64Of(overlappedLo, overlappedHi, (flags & FLAG_OVERLAPPED_BIGINT) !== 0),
      payloadLo === 0 && payloadHi === 0 ? undefined : this.#binding.takePayload(payloadLo, payloadHi),
      flags, // an I/O completion's error bit
    )
  }
}
