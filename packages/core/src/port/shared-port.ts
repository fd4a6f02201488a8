/**
 * The packet path in shared memory: `post()` and a `get()` that finds a packet it may take run
 * here, in JS, on the port's control block and ring, with no call into native code. The engine
 * (packages/native/src/port/port.cpp) runs the same steps on the same words, so the two are one
 * algorithm in two languages; the cctest `js_mirror.h` replays these steps in C++ so that
 * ThreadSanitizer checks the whole protocol.
 *
 * The protocol (docs/architecture.md, "The shared-memory packet path" and "The two locks"):
 * - Two locks, each one word that also holds a position: the tail lock holds the tail, the head
 *   lock the head (state in bits 0-1, position in bits 2-31, wrapping at 2^30). A post takes the
 *   tail lock, a get the head lock, so a producer and a consumer never wait for each other or
 *   take turns owning one cache line. The engine takes both for every call. Lock: read the word
 *   with a plain read (only a guess: the compare-exchange checks it, and an `Atomics` call is
 *   a builtin call in V8, not inlined, so each one left out of a post or a get shows), and
 *   `compareExchange(word, seen, seen | 1)` if its state is 0, then polled with `Atomics.load` up to
 *   {@link LOCK_POLLS} times while it is taken; then the call is made in native code instead
 *   (which spins, then parks). Unlock: `exchange(word, newPosition << 2)`, and a native wake only
 *   when the old state was 2 (a thread sleeps on the word).
 * - That exchange is also how a post and a get share the queue: a post writes the slot and then
 *   exchanges in the new tail, which publishes it; a get loads the tail word before it reads a
 *   slot, and exchanges in the new head after, which frees the slot for posts. Each side looks
 *   at the other's word only when its cache runs out (#roomUntil, #queuedUntil). A post loads
 *   the running count; a get stores it only when it changes (a thread that ends one delivery and
 *   takes the next packet still counts once). Every other word is written only under the lock
 *   the reader holds, so plain typed-array accesses suffice.
 * - Post takes the fast path only when the port is open, the ring has room, and no linked waiter
 *   may take a packet (nobody waits, or nobody may run): handing a packet to a waiter means
 *   waking it, which is native code. Waiters change only under both locks, so a post sees them
 *   exactly; the running count may drop under it, but only inside a get that then takes a
 *   packet or makes the call in native code, where the engine sees the packet posted.
 * - Get takes the fast path only when this thread's consumer block names this port (the engine
 *   sets that in a native get, and clears it for getAsync, blocking() and moves), the port is
 *   open, and the concurrency rule lets the thread run once its previous delivery ends.
 * - Batches (`postMany` without payloads, `getManyInto`) move between a batch and the ring
 *   with `TypedArray.set`: a batch packet has the stride of a ring slot (8 words).
 * - Anything else answers {@link SLOW}, and the caller makes the call in native code, which
 *   applies every rule. The fast path never decides anything the engine would decide otherwise.
 * - A thread that dies in a lock. `worker.terminate()` stops JS at the next point where V8
 *   looks for interrupts: a function's entry, a loop's back-edge, and (seen on Node 20) the call
 *   of an `Atomics` function, before it acts. That may be inside a critical section: the lock
 *   would stay taken, and every other thread would wait for it for ever. So the thread's consumer
 *   block says which lock it holds: C_LOCK_PORT is written before the compare-exchange,
 *   C_LOCK_MARK = the lock word + 1 right after it (a plain store: nothing between can stop the thread),
 *   and after the unlocking exchange C_LOCK_MARK = 0, or OWES_WAKE_* until the wake that the
 *   exchange asked for is made. As the thread goes away, the addon releases the lock it holds or
 *   makes the wake it owes (Port::releaseAbandonedLock). A call stopped before its exchange has
 *   published nothing: its slots lie past the tail, its running count is undone by the thread's
 *   teardown, and only the posted/dequeued counts (statistics) keep its packets. What must never
 *   run ahead of the exchange comes after it: a get's held record (plain stores right after the
 *   exchange, read only by this thread's teardown) and the payload count (Atomics.sub, so it may
 *   stay too high, which costs a look for tokens, never too low).
 */
import type { NativeBinding, NativePort } from '@iocp/native'
import {
  C_ASSOCIATED,
  C_HELD_IN_BLOCK,
  C_HELD_SLOT,
  C_LOCK_MARK,
  C_LOCK_PORT,
  C_RUNNING,
  K_ASYNC_WAITING,
  K_CAPACITY,
  K_CONCURRENCY,
  K_DEQUEUED_HI,
  K_DEQUEUED_LO,
  K_HEAD_LOCK,
  K_PAYLOADS_QUEUED,
  POSITION_MASK,
  K_TAIL_LOCK,
  K_POSTED_HI,
  K_POSTED_LO,
  K_RING_GEN,
  K_RING_MASK,
  K_RUNNING,
  K_STATE,
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
/** What #lockContended answers when the lock stayed taken (a taken word: never a free one). */
const LOCK_BUSY = 1
// C_LOCK_MARK is `word + 1` while this thread holds lock `word` (#lock), and `-(word + 1)` once
// its unlock asked for a wake that it has not made yet.
const OWES_WAKE_TAIL = -(K_TAIL_LOCK + 1)
const OWES_WAKE_HEAD = -(K_HEAD_LOCK + 1)

/**
 * A control block whose lock is always held: with it, every call takes the native path. Used
 * where the runtime forbids the addon's external memory.
 */
function lockedControl(): Int32Array {
  const control = new Int32Array(K_CONTROL_WORDS)
  control[K_TAIL_LOCK] = 1
  control[K_HEAD_LOCK] = 1
  return control
}

/** How many of the first `n` packets of `words` carry a payload token. */
function countTokens(words: Uint32Array, n: number): number {
  let tokens = 0
  for (let at = S_PAYLOAD_LO; at < n << SLOT_SHIFT; at += 1 << SLOT_SHIFT) {
    if ((words[at]! | words[at + 1]!) !== 0) tokens++
  }
  return tokens
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
  /**
   * While the port's posted count (kPostedHi:kPostedLo) is below this, the ring has room for a
   * post: the free slots this view last saw (from the head), added to the count then. Every post
   * adds one to the count and takes one slot, whoever makes it, and gets only free slots, so a
   * post needs no look at the head, which the consumers' cache line holds, until it runs out.
   * The engine bumps kRingGen when the head moves back (requeue) or the ring is replaced, and
   * then this is reset.
   */
  #roomUntil = 0
  /**
   * While the port's dequeued count (kDequeuedHi:kDequeuedLo) is below this, the queue holds a
   * published packet for a get: the packets this view last saw (from the tail), added to the
   * count then. Every take adds one to the count and every requeue removes one, in step with the
   * head, so a get need not look at the tail, which the producers' cache line holds.
   */
  #queuedUntil = 0
  /**
   * The last {@link SharedPort.getInto} took packets that carry payload tokens (the caller
   * exchanges them). False when the port had none queued: then there is nothing to look for.
   */
  tokensTaken = false

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
    this.#roomUntil = 0
    this.#queuedUntil = 0
  }

  /** Whether this view of the ring (or its cached counts) is stale (a racy read: only a hint to refresh). */
  refreshIfStale(): void {
    if (Atomics.load(this.#control, K_RING_GEN) !== this.#generation && this.#generation !== -1) this.#refreshRing()
  }

  /**
   * Takes lock `word` ({@link K_TAIL_LOCK} or {@link K_HEAD_LOCK}) for this thread. Returns the
   * word as it was (its position bits; state 0), now held, or {@link LOCK_BUSY} when it stayed
   * taken (make the call in native code). From the moment the thread holds it, its consumer
   * block says so (see "A thread that dies in a lock": the mark is a plain store right after the
   * compare-exchange). Small, so that V8 inlines it into each fast path.
   */
  #lock(word: number): number {
    const c = this.#control
    const b = this.#consumer
    b[C_LOCK_PORT] = this.#token
    // A plain read: only a guess, which the compare-exchange checks (see the file comment).
    const seen = c[word]!
    if ((seen & 3) === 0 && Atomics.compareExchange(c, word, seen, seen | 1) === seen) {
      b[C_LOCK_MARK] = word + 1
      return seen
    }
    return this.#lockContended(c, word)
  }

  /**
   * Takes the tail lock for a post made here: returns the word as #lock does, or
   * {@link LOCK_BUSY} (the lock released again) when the call must go native: the port is not
   * open, this view of the ring is stale, or a linked waiter may take the packet (see the file
   * comment).
   */
  #lockForPost(): number {
    const word = this.#lock(K_TAIL_LOCK)
    if (word === LOCK_BUSY) return LOCK_BUSY
    const c = this.#control
    if (
      c[K_STATE] !== 0 ||
      c[K_RING_GEN] !== this.#generation ||
      (c[K_WAITING] !== 0 && (Atomics.load(c, K_RUNNING) < c[K_CONCURRENCY]! || c[K_ASYNC_WAITING] !== 0))
    ) {
      this.#unlock(K_TAIL_LOCK, word)
      return LOCK_BUSY
    }
    return word
  }

  /**
   * The lock was taken: retry a few times before the call goes native. A critical section is a
   * few dozen instructions, so the holder is usually done within a few polls, and a poll is far
   * cheaper than a call into native code. Returns the word as it was when this thread took the
   * lock (its position bits; state 0), or {@link LOCK_BUSY}. Out of line, so that the fast paths
   * stay small.
   */
  #lockContended(c: Int32Array, word: number): number {
    for (let i = 0; i < LOCK_POLLS; i++) {
      const seen = Atomics.load(c, word)
      if ((seen & 3) === 0 && Atomics.compareExchange(c, word, seen, seen | 1) === seen) {
        // Marked right after the compare-exchange (see "A thread that dies in a lock").
        this.#consumer[C_LOCK_MARK] = word + 1
        return seen
      }
    }
    return LOCK_BUSY
  }

  /**
   * Releases a lock word, writing `value` (a position, state 0) into it: one exchange publishes
   * the position and frees the lock. If a thread sleeps on the word, native code wakes it.
   */
  #unlock(word: number, value: number): void {
    const b = this.#consumer
    if ((Atomics.exchange(this.#control, word, value) & 3) === 2) {
      b[C_LOCK_MARK] = -(word + 1)
      this.#wakeLock(word)
    }
    b[C_LOCK_MARK] = 0
  }

  /** An unlock found `word` at 2: a thread sleeps on it (out of line: it is rare). */
  #wakeLock(word: number): void {
    this.#native.wakeLock(word)
  }

  /**
   * Posts a packet whose key and overlapped are numbers in [0, 2^53-1] and `bytes` a uint32,
   * with no payload. Returns {@link OK}, {@link FULL}, or {@link SLOW}.
   */
  post(key: number, bytes: number, overlapped: number): number {
    const c = this.#control
    const b = this.#consumer
    // The word as it was, its state 0, now held: its upper bits are the tail.
    const word = this.#lockForPost()
    if (word === LOCK_BUSY) return SLOW
    const tail = word >>> 2
    const postedLo = c[K_POSTED_LO]!
    if (c[K_POSTED_HI]! * TWO_32 + (postedLo >>> 0) >= this.#roomUntil) {
      const room = this.#room(c, tail, 1)
      if (room !== OK) {
        this.#unlock(K_TAIL_LOCK, word)
        return room
      }
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
    c[K_POSTED_LO] = (postedLo + 1) | 0
    if (postedLo === -1) c[K_POSTED_HI] = (c[K_POSTED_HI]! + 1) | 0
    // Publish the packet (the tail moves past it) and unlock, in one exchange (#unlock, written
    // out: no call may come between the writes above and the exchange).
    if ((Atomics.exchange(c, K_TAIL_LOCK, ((tail + 1) & POSITION_MASK) << 2) & 3) === 2) {
      b[C_LOCK_MARK] = OWES_WAKE_TAIL
      this.#wakeLock(K_TAIL_LOCK)
    }
    b[C_LOCK_MARK] = 0
    return OK
  }

  /**
   * Looks at the head (the tail lock held): {@link OK} when `n` more packets fit in the ring and
   * under the capacity, and then the room is cached in #roomUntil; {@link FULL} at the capacity;
   * {@link SLOW} when the ring must grow (the engine does that).
   */
  #room(c: Int32Array, tail: number, n: number): number {
    const queued = (tail - (Atomics.load(c, K_HEAD_LOCK) >>> 2)) & POSITION_MASK
    const slots = c[K_RING_MASK]! + 1
    const capacity = c[K_CAPACITY]! >>> 0
    if (capacity !== 0 && queued + n > capacity) return FULL
    if (queued + n > slots) return SLOW
    const room = Math.min(slots, capacity === 0 ? slots : capacity) - queued
    this.#roomUntil = c[K_POSTED_HI]! * TWO_32 + (c[K_POSTED_LO]! >>> 0) + room
    return OK
  }

  /**
   * Posts `count` packets laid out like the ring (8 words each, no payloads, token words 0) in
   * one run, as the engine's postMany does once no waiter can take a packet. Returns how many
   * were posted (fewer than `count` only at the port's capacity), or {@link SLOW}.
   */
  postMany(words: Uint32Array, count: number): number {
    const c = this.#control
    const b = this.#consumer
    const word = this.#lockForPost()
    if (word === LOCK_BUSY) return SLOW
    const tail = word >>> 2
    const posted = c[K_POSTED_HI]! * TWO_32 + (c[K_POSTED_LO]! >>> 0)
    let n = count
    if (posted + n > this.#roomUntil) {
      // Up to the capacity: as many as fit, like the engine's postMany.
      const capacity = c[K_CAPACITY]! >>> 0
      if (capacity !== 0) n = Math.max(0, Math.min(n, capacity - ((tail - (Atomics.load(c, K_HEAD_LOCK) >>> 2)) & POSITION_MASK)))
      if (n === 0 || this.#room(c, tail, n) !== OK) {
        this.#unlock(K_TAIL_LOCK, word)
        return n === 0 ? 0 : SLOW
      }
    }
    const slots = c[K_RING_MASK]! + 1
    const r = this.#ring
    const start = tail & (slots - 1)
    const first = Math.min(n, slots - start)
    // (A whole batch is copied as it is: a subarray is an allocation.)
    r.set(first << SLOT_SHIFT === words.length ? words : words.subarray(0, first << SLOT_SHIFT), start << SLOT_SHIFT)
    if (n > first) r.set(words.subarray(first << SLOT_SHIFT, n << SLOT_SHIFT), 0)
    const sum = (posted % TWO_32) + n
    c[K_POSTED_LO] = sum | 0
    if (sum > 0xffff_ffff) c[K_POSTED_HI] = (c[K_POSTED_HI]! + 1) | 0
    // Publish and unlock (#unlock, written out, as in post).
    if ((Atomics.exchange(c, K_TAIL_LOCK, ((tail + n) & POSITION_MASK) << 2) & 3) === 2) {
      b[C_LOCK_MARK] = OWES_WAKE_TAIL
      this.#wakeLock(K_TAIL_LOCK)
    }
    b[C_LOCK_MARK] = 0
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
    const word = this.#lock(K_HEAD_LOCK)
    if (word === LOCK_BUSY) return SLOW
    const counted = b[C_RUNNING] !== 0
    const running = c[K_RUNNING]! - (counted ? 1 : 0)
    const head = word >>> 2
    const dequeued = c[K_DEQUEUED_HI]! * TWO_32 + (c[K_DEQUEUED_LO]! >>> 0)
    let queued = this.#queuedUntil - dequeued
    if (queued < max) queued = this.#queued(c, head, dequeued)
    if (
      c[K_STATE] !== 0 ||
      queued === 0 ||
      running >= c[K_CONCURRENCY]! ||
      c[K_RING_GEN] !== this.#generation ||
      c[K_TRACK_HELD] !== 0
    ) {
      this.#stopRunning(counted, running, word)
      return SLOW
    }
    const n = Math.min(max, queued)
    const slots = c[K_RING_MASK]! + 1
    const r = this.#ring
    const start = head & (slots - 1)
    const first = Math.min(n, slots - start)
    words.set(r.subarray(start << SLOT_SHIFT, (start + first) << SLOT_SHIFT), 0)
    if (n > first) words.set(r.subarray(0, (n - first) << SLOT_SHIFT), first << SLOT_SHIFT)
    const tokens = c[K_PAYLOADS_QUEUED] === 0 ? 0 : countTokens(words, n)
    // From here to the exchange, no call (see "A thread that dies in a lock").
    if (!counted) {
      Atomics.store(c, K_RUNNING, running + 1)
      b[C_RUNNING] = 1
    }
    this.tokensTaken = tokens !== 0
    const sum = (dequeued % TWO_32) + n
    c[K_DEQUEUED_LO] = sum | 0
    if (sum > 0xffff_ffff) c[K_DEQUEUED_HI] = (c[K_DEQUEUED_HI]! + 1) | 0
    // Free the slots (the head moves past them) and unlock, in one exchange.
    if ((Atomics.exchange(c, K_HEAD_LOCK, ((head + n) & POSITION_MASK) << 2) & 3) === 2) {
      b[C_LOCK_MARK] = OWES_WAKE_HEAD
      this.#wakeLock(K_HEAD_LOCK)
    }
    b[C_LOCK_MARK] = 0
    // Only now, once the packets are surely taken: a thread stopped before this leaves the count
    // too high (more looking for tokens), never too low (tokens left unexchanged).
    if (tokens !== 0) Atomics.sub(c, K_PAYLOADS_QUEUED, tokens)
    return n
  }

  /**
   * A get that takes nothing here: the thread's previous delivery ends (the engine's
   * stopRunningLocked; if the call then goes native, the engine finds it stopped already), and
   * the head lock is released as `word` (the head unchanged). `running` is the count without
   * this thread.
   */
  #stopRunning(counted: boolean, running: number, word: number): void {
    if (counted) {
      this.#consumer[C_RUNNING] = 0
      Atomics.store(this.#control, K_RUNNING, running)
    }
    this.#unlock(K_HEAD_LOCK, word)
  }

  /**
   * Looks at the tail (the head lock held): how many packets are queued, all published. Caches
   * that in #queuedUntil.
   */
  #queued(c: Int32Array, head: number, dequeued: number): number {
    const queued = ((Atomics.load(c, K_TAIL_LOCK) >>> 2) - head) & POSITION_MASK
    this.#queuedUntil = dequeued + queued
    return queued
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
    const word = this.#lock(K_HEAD_LOCK)
    if (word === LOCK_BUSY) return undefined
    // The previous delivery ends: without it, may the thread run? A thread that ends one
    // delivery and takes the next packet keeps its place in the count, and writes no count.
    const counted = b[C_RUNNING] !== 0
    const running = c[K_RUNNING]! - (counted ? 1 : 0)
    const head = word >>> 2
    const dequeuedLo = c[K_DEQUEUED_LO]!
    const dequeued = c[K_DEQUEUED_HI]! * TWO_32 + (dequeuedLo >>> 0)
    if (
      c[K_STATE] !== 0 ||
      (dequeued >= this.#queuedUntil && this.#queued(c, head, dequeued) === 0) ||
      running >= c[K_CONCURRENCY]! ||
      c[K_RING_GEN] !== this.#generation
    ) {
      this.#stopRunning(counted, running, word)
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
    // From here to the exchange, no call (see "A thread that dies in a lock").
    if (!counted) {
      Atomics.store(c, K_RUNNING, running + 1)
      b[C_RUNNING] = 1
    }
    c[K_DEQUEUED_LO] = (dequeuedLo + 1) | 0
    if (dequeuedLo === -1) c[K_DEQUEUED_HI] = (c[K_DEQUEUED_HI]! + 1) | 0
    const trackHeld = c[K_TRACK_HELD] !== 0
    // Free the slot (the head moves past it) and unlock, in one exchange (#unlock, as in post).
    const unlocked = Atomics.exchange(c, K_HEAD_LOCK, ((head + 1) & POSITION_MASK) << 2)
    if (trackHeld) {
      // The held record a pool recovers if this thread dies before its next get: written once
      // the packet is surely taken, with plain stores right after the exchange (nothing between
      // where the thread could be stopped), and read only by this thread's own teardown.
      b[C_HELD_SLOT + S_KEY_LO] = keyLo
      b[C_HELD_SLOT + S_KEY_HI] = keyHi
      b[C_HELD_SLOT + S_OVERLAPPED_LO] = overlappedLo
      b[C_HELD_SLOT + S_OVERLAPPED_HI] = overlappedHi
      b[C_HELD_SLOT + S_BYTES] = bytes
      b[C_HELD_SLOT + S_FLAGS] = flags
      b[C_HELD_IN_BLOCK] = 1
    }
    if ((unlocked & 3) === 2) {
      b[C_LOCK_MARK] = OWES_WAKE_HEAD
      this.#wakeLock(K_HEAD_LOCK)
    }
    b[C_LOCK_MARK] = 0
    // See getInto: the count may be too high for a moment, never too low.
    if ((payloadLo | payloadHi) !== 0) Atomics.sub(c, K_PAYLOADS_QUEUED, 1)

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
