/**
 * Packets in stream entries, and the forwarder's local wrapping of them.
 *
 * In Redis: `k` and `o` (decimal), `t` (type flags: 1 key is a bigint, 2 overlapped is a bigint,
 * 4 has data), `b` (bytes, decimal), `d` (the payload, raw bytes; empty without one). Every
 * entry has the same five fields, so a batch goes to the post script flat.
 *
 * On the local port: the forwarder posts `(key, bytes, slot, header + data)`: `overlapped` is
 * the forwarder's slot of the entry (how the thread's next get tells the forwarder what to
 * acknowledge), and the original `overlapped` and flags ride in a 9-byte header in front of the
 * payload. {@link ForwardedPort} gives the thread back the packet as it was posted.
 */
import type { Packet } from '@iocp/core'
import { invalidType, outOfRange } from './errors.js'

export const FLAG_KEY_BIGINT = 1
export const FLAG_OVERLAPPED_BIGINT = 2
export const FLAG_HAS_DATA = 4
/** Bytes of the local header: flags (1) + overlapped (8, little-endian). */
export const HEADER = 9
/** Fields per packet entry. */
export const PACKET_FIELDS = 10

const MAX_U64 = (1n << 64n) - 1n

function checkU64(name: string, value: unknown): void {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_U64) throw outOfRange(name, 'an integer in [0, 2^64-1]', value)
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(name, 'a safe integer >= 0 or a bigint in [0, 2^64-1]', value)
  } else {
    throw invalidType(name, 'a number or a bigint', value)
  }
}

/**
 * Validates a packet as `post()` does and returns its entry fields. Throws `TypeError` /
 * `RangeError` naming `key`, `bytes`, `overlapped` or `data` (prefixed by `where`).
 */
export function packetFields(key: unknown, bytes: unknown, overlapped: unknown, data: unknown, where = ''): Array<string | Buffer> {
  checkU64(`${where}key`, key)
  if (typeof bytes !== 'number') throw invalidType(`${where}bytes`, 'an integer in [0, 2^32-1]', bytes)
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffff_ffff) throw outOfRange(`${where}bytes`, 'an integer in [0, 2^32-1]', bytes)
  checkU64(`${where}overlapped`, overlapped)
  if (data !== undefined && !(data instanceof Uint8Array)) throw invalidType(`${where}data`, 'a Uint8Array or undefined', data)
  const flags =
    (typeof key === 'bigint' ? FLAG_KEY_BIGINT : 0) |
    (typeof overlapped === 'bigint' ? FLAG_OVERLAPPED_BIGINT : 0) |
    (data !== undefined ? FLAG_HAS_DATA : 0)
  return [
    'k', String(key),
    'o', String(overlapped),
    't', String(flags),
    'b', String(bytes),
    'd', data === undefined ? Buffer.alloc(0) : Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]
}

/** A packet read from an entry, ready for the local port. */
export interface EntryPacket {
  readonly key: number | bigint
  readonly bytes: number
  readonly overlapped: bigint
  readonly flags: number
  readonly data: Buffer
}

/** Decodes an entry's fields (see the file comment). */
export function entryPacket(fields: Map<string, Buffer>): EntryPacket {
  const flags = Number(fields.get('t')?.toString() ?? 0)
  const keyText = fields.get('k')?.toString() ?? '0'
  return {
    key: flags & FLAG_KEY_BIGINT ? BigInt(keyText) : Number(keyText),
    bytes: Number(fields.get('b')?.toString() ?? 0),
    overlapped: BigInt(fields.get('o')?.toString() ?? '0'),
    flags,
    data: fields.get('d') ?? Buffer.alloc(0),
  }
}

/** The local payload of an entry packet: header + data. */
export function localPayload(p: EntryPacket): Uint8Array {
  const out = new Uint8Array(HEADER + (p.flags & FLAG_HAS_DATA ? p.data.length : 0))
  const view = new DataView(out.buffer)
  view.setUint8(0, p.flags)
  view.setBigUint64(1, p.overlapped, true)
  if (p.flags & FLAG_HAS_DATA) out.set(p.data, HEADER)
  return out
}

/** The packet as posted remotely, from the local one the forwarder posted. */
export function unwrap(local: Packet): Packet {
  const d = local.data!
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength)
  const flags = view.getUint8(0)
  const ov = view.getBigUint64(1, true)
  return {
    key: local.key,
    bytes: local.bytes,
    overlapped: flags & FLAG_OVERLAPPED_BIGINT ? ov : Number(ov),
    data: flags & FLAG_HAS_DATA ? d.subarray(HEADER) : undefined,
  }
}
