/**
 * The zero-allocation form of `getMany`: a caller-owned buffer that
 * {@link CompletionPort.getManyInto} fills in place, read through accessors instead of packet
 * objects. Nothing is allocated per call unless a packet carries a payload (its `Uint8Array`).
 */
import { errnoCode } from './io-errors.js'
import type { NativePort } from '@iocp/native'
import { Errors } from '../errors.js'
import {
  FLAG_HAS_DATA,
  FLAG_IO_ERROR,
  FLAG_KEY_BIGINT,
  FLAG_OVERLAPPED_BIGINT,
  PACKET_WORDS,
  W_BYTES,
  W_FLAGS,
  W_KEY,
  W_OVERLAPPED,
  W_PAYLOAD,
  makePacket,
  u64At,
  view64,
  type Packet,
} from './packet.js'
import { SLOW, type SharedPort } from './shared-port.js'
import { MAX_BATCH, type ThreadState } from './thread-state.js'
import { validateData, validateInteger, validateU32, validateU64 } from '../validate.js'

const TWO_32 = 0x1_0000_0000

/**
 * Fills `batch` from `port` (the native `getManyInto`), takes the payloads, and returns the
 * addon's result (a count >= 1, 0 on timeout, or a negative status; on a status the batch is
 * left empty). Internal to @iocp/core.
 */
export let fillBatch: (batch: PacketBatch, port: NativePort, timeoutMs: number, s: ThreadState) => number

/**
 * Posts the packets of `batch` to `port` (the native `postMany`): the addon's result, a count
 * or a negative status. Internal to @iocp/core.
 */
export let postBatch: (batch: PacketBatch, port: NativePort) => number
/**
 * Posts the batch through the shared-memory fast path when it carries no payload: how many
 * were posted, or SLOW (then call {@link postBatch}).
 */
export let postBatchShared: (batch: PacketBatch, shared: SharedPort) => number
/**
 * Fills the batch through the shared-memory fast path: the count, or SLOW (then call
 * {@link fillBatch}). Payloads come by token and are taken here.
 */
export let fillBatchShared: (batch: PacketBatch, shared: SharedPort, s: ThreadState) => number

/**
 * Whether `value` was made by the {@link PacketBatch} constructor (a private-brand check, unlike
 * `instanceof`: `Object.create(PacketBatch.prototype)` is not a batch, and a Proxy's traps do
 * not run). Internal to @iocp/core.
 */
export let isPacketBatch: (value: unknown) => value is PacketBatch

/**
 * A reusable, caller-owned buffer of up to `capacity` packets, filled by
 * {@link CompletionPort.getManyInto}: the batch form of IOCP's `GetQueuedCompletionStatusEx`
 * with no allocation per call.
 *
 * After a fill, packets `0 .. length-1` are readable through the accessors; a later fill
 * replaces them. Read `i`-th packet values with {@link PacketBatch.key}, {@link PacketBatch.bytes},
 * {@link PacketBatch.overlapped} and {@link PacketBatch.data}, or build an object with
 * {@link PacketBatch.packet}.
 *
 * A batch belongs to the thread that made it (it is not shared memory), and may be used with
 * any port.
 *
 * @example
 * ```ts
 * const batch = new PacketBatch(256)
 * for (;;) {
 *   const n = port.getManyInto(batch)
 *   for (let i = 0; i < n; i++) handle(batch.key(i), batch.bytes(i), batch.overlapped(i))
 * }
 * ```
 */
export class PacketBatch {
  /** The most packets one fill can hold. */
  readonly capacity: number
  readonly #words: Uint32Array
  readonly #words64: BigUint64Array
  readonly #data: Array<Uint8Array | undefined>
  #length = 0
  /**
   * Some packet pushed since the last clear or fill carries a payload. While it is false, every
   * entry of #data is undefined (those at length and beyond always are), so clear() has nothing
   * to drop.
   */
  #hasData = false
  /**
   * Packets below this index may have nonzero high words or flags (a fill or #pushChecked wrote
   * them); from it on, every word of every packet is 0 but those push's fast path writes. So
   * push writes three words, not six, and clear() zeroes what a fill left (a batch that is only
   * ever pushed to never needs it).
   */
  #dirtyUntil = 0


  /**
   * @param capacity - the most packets one fill returns: an integer in [1, 65536].
   * @throws {TypeError} `capacity` is not a number.
   * @throws {RangeError} `capacity` is not an integer in [1, 65536].
   */
  constructor(capacity: number) {
    validateInteger('capacity', capacity, 1, MAX_BATCH)
    this.capacity = capacity
    this.#words = new Uint32Array(capacity * PACKET_WORDS)
    this.#words64 = view64(this.#words)
    this.#data = new Array<Uint8Array | undefined>(capacity).fill(undefined)
  }

  /**
   * How many packets the batch holds: what the last fill returned (0 before the first fill and
   * after a timeout), or what {@link PacketBatch.push} added since the last
   * {@link PacketBatch.clear}.
   */
  get length(): number {
    return this.#length
  }

  /** Empties the batch (its memory is kept), ready for {@link PacketBatch.push}. */
  clear(): void {
    // Without payloads every entry is already undefined (see #hasData).
    if (this.#hasData) this.#data.fill(undefined, 0, this.#length)
    if (this.#dirtyUntil !== 0) {
      this.#words.fill(0, 0, this.#dirtyUntil * PACKET_WORDS)
      this.#dirtyUntil = 0
    }
    this.#length = 0
    this.#hasData = false
  }

  /**
   * Appends a packet, to be posted with {@link CompletionPort.postMany}. Validates like
   * {@link CompletionPort.post}; allocates nothing (a payload is copied only when posted).
   *
   * @param key - an integer in [0, 2^53-1], or a bigint in [0, 2^64-1].
   * @param bytes - an integer in [0, 2^32-1].
   * @default bytes: `0`, overlapped: `0`
   * @param overlapped - like `key`.
   * @param data - an optional payload.
   * @returns the new {@link PacketBatch.length}.
   * @throws {TypeError} an argument has the wrong type.
   * @throws {RangeError} an argument is out of range, or the batch is full (`length === capacity`).
   */
  push(key: number | bigint, bytes: number = 0, overlapped: number | bigint = 0, data?: Uint8Array): number {
    const i = this.#length
    if (
      typeof key === 'number' &&
      typeof bytes === 'number' &&
      typeof overlapped === 'number' &&
      data === undefined &&
      i < this.capacity &&
      i >= this.#dirtyUntil &&
      (key >>> 0) === key &&
      (overlapped >>> 0) === overlapped &&
      (bytes >>> 0) === bytes
    ) {
      // The common case, checked inline: uint32 numbers (a number that `>>> 0` keeps is one),
      // no payload, room left, a clean packet (its high words and flags are 0: #dirtyUntil).
      // Everything else takes #pushChecked, so that push stays small enough for V8 to inline
      // into the caller's loop.
      const words = this.#words
      const base = i * PACKET_WORDS
      words[base + W_KEY] = key
      words[base + W_OVERLAPPED] = overlapped
      words[base + W_BYTES] = bytes
      return (this.#length = i + 1)
    }
    return this.#pushChecked(key, bytes, overlapped, data)
  }

  /** push's general case, kept out of push so that push stays small enough to be inlined. */
  #pushChecked(key: number | bigint, bytes: number, overlapped: number | bigint, data: Uint8Array | undefined): number {
    const i = this.#length
    validateU64('key', key)
    validateU32('bytes', bytes)
    validateU64('overlapped', overlapped)
    validateData('data', data)
    if (i === this.capacity) {
      throw Errors.outOfRange('batch', `a batch with room (capacity ${this.capacity} is used up; clear() it)`, i)
    }
    const words = this.#words
    const base = i * PACKET_WORDS
    let flags = data === undefined ? 0 : FLAG_HAS_DATA
    if (typeof key === 'bigint') {
      this.#words64[(base + W_KEY) >>> 1] = key
      flags |= FLAG_KEY_BIGINT
    } else {
      words[base + W_KEY] = key >>> 0
      words[base + W_KEY + 1] = Math.floor(key / TWO_32)
    }
    if (typeof overlapped === 'bigint') {
      this.#words64[(base + W_OVERLAPPED) >>> 1] = overlapped
      flags |= FLAG_OVERLAPPED_BIGINT
    } else {
      words[base + W_OVERLAPPED] = overlapped >>> 0
      words[base + W_OVERLAPPED + 1] = Math.floor(overlapped / TWO_32)
    }
    words[base + W_BYTES] = bytes
    words[base + W_FLAGS] = flags
    this.#data[i] = data
    if (data !== undefined) this.#hasData = true
    if (i >= this.#dirtyUntil) this.#dirtyUntil = i + 1
    return (this.#length = i + 1)
  }

  /**
   * The key of packet `i`, in the type it was posted in (`number` or `bigint`).
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  key(i: number): number | bigint {
    const base = this.#base(i)
    return u64At(this.#words, this.#words64, base + W_KEY, (this.#words[base + W_FLAGS]! & FLAG_KEY_BIGINT) !== 0)
  }

  /**
   * The key of packet `i` as a `bigint`, whatever type it was posted in.
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  keyBigInt(i: number): bigint {
    return u64At(this.#words, this.#words64, this.#base(i) + W_KEY, true) as bigint
  }

  /**
   * The overlapped value of packet `i`, in the type it was posted in (`number` or `bigint`).
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  overlapped(i: number): number | bigint {
    const base = this.#base(i)
    return u64At(
      this.#words,
      this.#words64,
      base + W_OVERLAPPED,
      (this.#words[base + W_FLAGS]! & FLAG_OVERLAPPED_BIGINT) !== 0,
    )
  }

  /**
   * The overlapped value of packet `i` as a `bigint`, whatever type it was posted in.
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  overlappedBigInt(i: number): bigint {
    return u64At(this.#words, this.#words64, this.#base(i) + W_OVERLAPPED, true) as bigint
  }

  /**
   * The bytes value of packet `i`.
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  bytes(i: number): number {
    return this.#words[this.#base(i) + W_BYTES]!
  }

  /**
   * The payload of packet `i`, or `undefined` if it has none. The `Uint8Array` is the
   * caller's to keep: the next fill forgets it but does not reuse its memory.
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  data(i: number): Uint8Array | undefined {
    this.#base(i)
    return this.#data[i]
  }

  /**
   * Packet `i` as a {@link Packet} object (allocates; the accessors do not).
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  packet(i: number): Packet {
    return makePacket(this.key(i), this.bytes(i), this.overlapped(i), this.#data[i], this.#words[this.#base(i) + W_FLAGS]!)
  }

  /**
   * For an I/O completion that failed, Node's name of its error (`'ECANCELED'`, ...; `bytes(i)`
   * is then the errno); `undefined` for every other packet.
   * @throws {RangeError} `i` is not an integer in [0, length-1].
   */
  code(i: number): string | undefined {
    const base = this.#base(i)
    return (this.#words[base + W_FLAGS]! & FLAG_IO_ERROR) !== 0 ? errnoCode(this.#words[base + W_BYTES]!) : undefined
  }

  #base(i: number): number {
    // typeof first: `>>>` would throw for a bigint or a symbol, and run an object's valueOf.
    if (typeof i !== 'number' || (i >>> 0) !== i || i >= this.#length) this.#badIndex(i)
    return i * PACKET_WORDS
  }

  /** Throws for an index outside [0, length-1]; apart from #base so that the accessors inline. */
  #badIndex(i: unknown): never {
    const expected = `an integer in [0, ${this.#length - 1}] (batch.length is ${this.#length})`
    if (typeof i !== 'number') throw Errors.invalidType('i', expected, i)
    throw Errors.outOfRange('i', expected, i)
  }

  static {
    fillBatch = (batch, port, timeoutMs, s) => {
      const words = batch.#words
      const data = batch.#data
      const previous = batch.#length
      const result = port.getManyInto(words, batch.capacity, timeoutMs)
      const count = result > 0 ? result : 0
      if (count > batch.#dirtyUntil) batch.#dirtyUntil = count
      let hasData = false
      for (let i = 0; i < count; i++) {
        if ((words[i * PACKET_WORDS + W_FLAGS]! & FLAG_HAS_DATA) !== 0) {
          data[i] = s.binding.takeData(i)
          hasData = true
        } else {
          data[i] = undefined
        }
      }
      for (let i = count; i < previous; i++) data[i] = undefined
      batch.#length = count
      batch.#hasData = hasData
      return result
    }
    postBatchShared = (batch, shared) =>
      batch.#hasData ? SLOW : shared.postMany(batch.#words, batch.#length)
    fillBatchShared = (batch, shared, s) => {
      const words = batch.#words
      const count = shared.getInto(words, batch.capacity)
      if (count === SLOW) return SLOW
      if (count > batch.#dirtyUntil) batch.#dirtyUntil = count
      const data = batch.#data
      const previous = batch.#length
      // Without payloads before, every entry is undefined already (see #hasData): only a
      // payload is written.
      const hadData = batch.#hasData
      let hasData = false
      // Most batches carry no payload at all (the port counts those it holds), and then there
      // is nothing to exchange or clear.
      if (!shared.tokensTaken && !hadData) {
        batch.#length = count
        return count
      }
      for (let i = 0; i < count; i++) {
        const at = i * PACKET_WORDS + W_PAYLOAD
        const lo = words[at]!
        const hi = words[at + 1]!
        if ((lo | hi) === 0) {
          if (hadData) data[i] = undefined
          continue
        }
        // Exchange the token for the bytes, and leave the words as a native fill would: the
        // token words 0, FLAG_HAS_DATA set (a forwarded batch posts the payload again).
        data[i] = s.binding.takePayload(lo, hi)
        words[at] = 0
        words[at + 1] = 0
        words[i * PACKET_WORDS + W_FLAGS] = words[i * PACKET_WORDS + W_FLAGS]! | FLAG_HAS_DATA
        hasData = true
      }
      if (hadData) for (let i = count; i < previous; i++) data[i] = undefined
      batch.#length = count
      batch.#hasData = hasData
      return count
    }
    isPacketBatch = (value): value is PacketBatch => typeof value === 'object' && value !== null && #words in value
    postBatch = (batch, port) =>
      port.postMany(batch.#words, batch.#length, batch.#hasData ? batch.#data : undefined)
  }
}
