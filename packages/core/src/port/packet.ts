/**
 * The packet as JS sees it, and its decoding from the addon's two carriers:
 *
 * - the scratch words, `PACKET_WORDS` (8) uint32 per packet, the stride of a ring slot:
 *   `[keyLo, keyHi, overlappedLo, overlappedHi, bytes, flags, payloadLo, payloadHi]` (the
 *   payload words are 0 except in a batch the JS fast path just filled from the ring);
 * - flat arrays (from `close()`, `recoverHeld()`) and the async callback's arguments, the same
 *   six values followed by the payload.
 *
 * A value posted as a number is at most 2^53-1, so `hi * 2^32 + lo` is exact. A value posted as
 * a bigint (its flag is set) is rebuilt as a bigint, from a `BigUint64Array` view of the same
 * words or from the two halves with bigint arithmetic: it never passes through a double.
 */
import { errnoCode } from './io-errors.js'

/** Words per packet in a scratch or batch buffer. Matches the addon's `PACKET_WORDS`. */
export const PACKET_WORDS = 8
/** flags: the key was posted as a bigint. Matches the addon's `FLAG_KEY_BIGINT`. */
export const FLAG_KEY_BIGINT = 1
/** flags: the overlapped value was posted as a bigint. Matches `FLAG_OVERLAPPED_BIGINT`. */
export const FLAG_OVERLAPPED_BIGINT = 2
/** flags: the packet carries a payload, to be taken with `takeData(i)`. Matches `FLAG_HAS_DATA`. */
export const FLAG_HAS_DATA = 4
/**
 * flags: an I/O completion whose operation failed; the words' `bytes` holds the errno. Matches the
 * addon's `FLAG_IO_ERROR` (src/io/backend.h, kFlagIoError).
 */
export const FLAG_IO_ERROR = 8

/** Word offsets inside one packet. */
export const W_KEY = 0
export const W_OVERLAPPED = 2
export const W_BYTES = 4
export const W_FLAGS = 5
export const W_PAYLOAD = 6

/** Entries per packet in a flat array (the first 6 words + the payload). */
const FLAT_ENTRIES = 7

const TWO_32 = 0x1_0000_0000

/** Whether a `BigUint64Array` element reads the two uint32 words below it as `[lo, hi]`. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/**
 * One completion packet: IOCP's (`dwCompletionKey`, `dwNumberOfBytesTransferred`,
 * `lpOverlapped`) triple plus an optional payload. The port never interprets any of them.
 *
 * Every packet object has the same four properties in the same order, `data` included.
 */
export interface Packet {
  /**
   * The completion key, returned in the type it was posted in: a `number` (an integer in
   * [0, 2^53-1]) or a `bigint` (in [0, 2^64-1]).
   */
  key: number | bigint
  /** The "bytes transferred" value: an integer in [0, 2^32-1]. */
  bytes: number
  /**
   * The overlapped value, an opaque integer (an index into shared memory, an id, ...), returned
   * in the type it was posted in, like {@link Packet.key}.
   */
  overlapped: number | bigint
  /**
   * The payload given to `post()`, copied once when it was posted and now owned by this
   * consumer; `undefined` if none was given.
   */
  data: Uint8Array | undefined
  /**
   * Only on the completion of an overlapped I/O operation that failed (docs/io.md): Node's name
   * of the error (`'EBADF'`, `'ECANCELED'`, ...), with `bytes` 0. IOCP's
   * `GetQueuedCompletionStatus` returning FALSE with `lpOverlapped` set. Absent otherwise.
   */
  code?: string
}

/**
 * Builds a packet; the one place a `Packet` object literal is written, so the shape is fixed.
 * `flags` with {@link FLAG_IO_ERROR} makes a failed I/O completion (`bytes` is then the errno).
 */
export function makePacket(
  key: number | bigint,
  bytes: number,
  overlapped: number | bigint,
  data: Uint8Array | undefined,
  flags: number = 0,
): Packet {
  if ((flags & FLAG_IO_ERROR) !== 0) return { key, bytes: 0, overlapped, data, code: errnoCode(bytes) }
  return { key, bytes, overlapped, data }
}

/**
 * The 64-bit value whose low word is `words[at]` (`at` even): a bigint read through `words64`
 * (a view of the same buffer) when `big`, else the exact number `hi * 2^32 + lo`.
 */
export function u64At(words: Uint32Array, words64: BigUint64Array, at: number, big: boolean): number | bigint {
  if (!big) return words[at + 1]! * TWO_32 + words[at]!
  return LITTLE_ENDIAN ? words64[at >>> 1]! : (BigInt(words[at + 1]!) << 32n) | BigInt(words[at]!)
}

/** The 64-bit value of two uint32 halves, as a bigint when `big`, else as an exact number. */
export function u64Of(lo: number, hi: number, big: boolean): number | bigint {
  return big ? (BigInt(hi) << 32n) | BigInt(lo) : hi * TWO_32 + lo
}

/**
 * A `BigUint64Array` over the same memory as `words`, for {@link u64At}. `words` must start at
 * an 8-byte boundary (every buffer @iocp/core allocates does).
 */
export function view64(words: Uint32Array): BigUint64Array {
  return new BigUint64Array(words.buffer, words.byteOffset, words.length >>> 1)
}

/** Decodes packet `i` of a scratch or batch buffer; `data` is its payload, already taken. */
export function readPacket(
  words: Uint32Array,
  words64: BigUint64Array,
  i: number,
  data: Uint8Array | undefined,
): Packet {
  const base = i * PACKET_WORDS
  const flags = words[base + W_FLAGS]!
  return makePacket(
    u64At(words, words64, base + W_KEY, (flags & FLAG_KEY_BIGINT) !== 0),
    words[base + W_BYTES]!,
    u64At(words, words64, base + W_OVERLAPPED, (flags & FLAG_OVERLAPPED_BIGINT) !== 0),
    data,
    flags,
  )
}

/** Decodes the addon's flat packet list (7 entries per packet), as from `close()`. */
export function packetsFromFlat(flat: ReadonlyArray<number | Uint8Array | undefined>): Packet[] {
  const packets: Packet[] = []
  for (let at = 0; at + FLAT_ENTRIES <= flat.length; at += FLAT_ENTRIES) {
    const flags = flat[at + 5] as number
    packets.push(
      makePacket(
        u64Of(flat[at] as number, flat[at + 1] as number, (flags & FLAG_KEY_BIGINT) !== 0),
        flat[at + 4] as number,
        u64Of(flat[at + 2] as number, flat[at + 3] as number, (flags & FLAG_OVERLAPPED_BIGINT) !== 0),
        flat[at + 6] as Uint8Array | undefined,
        flags,
      ),
    )
  }
  return packets
}
