/**
 * The zero-allocation form of `getMany`: a caller-owned buffer that
 * {@link CompletionPort.getManyInto} fills in place, read through accessors instead of packet
 * objects. Nothing is allocated per call unless a packet carries a payload (its `Uint8Array`).
 */
import type { NativePort } from '@iocp/native'
import { Errors } from './errors.js'
import {
  FLAG_HAS_DATA,
  FLAG_KEY_BIGINT,
  FLAG_OVERLAPPED_BIGINT,
  PACKET_WORDS,
  W_BYTES,
  W_FLAGS,
  W_KEY,
  W_OVERLAPPED,
  makePacket,
  u64At,
  view64,
  type Packet,
} from './packet.js'
import { MAX_BATCH, type ThreadState } from './thread-state.js'
import { validateInteger } from './validate.js'

/**
 * Fills `batch` from `port` (the native `getManyInto`), takes the payloads, and returns the
 * addon's result (a count >= 1, 0 on timeout, or a negative status; on a status the batch is
 * left empty). Internal to @iocp/core.
 */
export let fillBatch: (batch: PacketBatch, port: NativePort, timeoutMs: number, s: ThreadState) => number

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

  /** How many packets the last fill returned (0 before the first fill and after a timeout). */
  get length(): number {
    return this.#length
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
    return makePacket(this.key(i), this.bytes(i), this.overlapped(i), this.#data[i])
  }

  #base(i: number): number {
    if ((i >>> 0) !== i || i >= this.#length) {
      const expected = `an integer in [0, ${this.#length - 1}] (batch.length is ${this.#length})`
      if (typeof i !== 'number') throw Errors.invalidType('i', expected, i)
      throw Errors.outOfRange('i', expected, i)
    }
    return i * PACKET_WORDS
  }

  static {
    fillBatch = (batch, port, timeoutMs, s) => {
      const words = batch.#words
      const data = batch.#data
      const previous = batch.#length
      const result = port.getManyInto(words, batch.capacity, timeoutMs)
      const count = result > 0 ? result : 0
      for (let i = 0; i < count; i++) {
        data[i] = (words[i * PACKET_WORDS + W_FLAGS]! & FLAG_HAS_DATA) !== 0 ? s.binding.takeData(i) : undefined
      }
      for (let i = count; i < previous; i++) data[i] = undefined
      batch.#length = count
      return result
    }
  }
}
