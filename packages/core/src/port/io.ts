/**
 * Overlapped file I/O on a port: IOCP's `CreateIoCompletionPort(FileHandle, port, key)`,
 * `ReadFile`/`WriteFile`/`FlushFileBuffers` with an `OVERLAPPED`, and `CancelIoEx`.
 * `CompletionPort`'s I/O methods delegate here; this file validates their arguments and turns the
 * addon's status codes into errors. The backends (io_uring, a native thread pool) live in
 * @iocp/native (src/io); a completion enters the port through the engine's own post path, so it
 * is dequeued like any posted packet. docs/io.md has the whole contract.
 */
import type { NativeBinding, NativePort } from '@iocp/native'
import { Errors } from '../errors.js'
import { validateInteger, validateOptions, validateU64 } from '../validate.js'
import { IoErrors } from './io-errors.js'
import { thread } from './thread-state.js'

/**
 * Which backend runs a port's I/O: `'io_uring'` (Linux, where the kernel allows it), the portable
 * `'thread-pool'` (`pread`/`pwrite` on native threads), or `'auto'`: io_uring when it works,
 * else the thread pool.
 */
export type IoBackendName = 'auto' | 'io_uring' | 'thread-pool'

/** The environment variable that picks the backend when `options.io` does not. */
export const IO_BACKEND_ENV = 'IOCP_IO_BACKEND'

/** One operation of {@link CompletionPort.submit}. */
export type IoRequest =
  | {
      /** `'read'` (ReadFile) or `'write'` (WriteFile). */
      op: 'read' | 'write'
      /** An fd associated with the port. */
      fd: number
      /** A view over a `SharedArrayBuffer`; it belongs to the operation until its packet is dequeued. */
      buffer: ArrayBufferView
      /** The file offset, an integer in [0, 2^53-1]. */
      position: number
      /** The packet's overlapped value: an integer in [0, 2^53-1] or a bigint in [0, 2^64-1]. */
      overlapped: number | bigint
      /** Bytes to transfer, at most `buffer.byteLength`. @default buffer.byteLength */
      length?: number
    }
  | {
      /** `'fsync'` (FlushFileBuffers). */
      op: 'fsync'
      /** An fd associated with the port. */
      fd: number
      /** The packet's overlapped value. */
      overlapped: number | bigint
    }

/** The I/O part of {@link CompletionPort.stats}. */
export interface IoStats {
  /** The backend serving this port, or `null` before its first {@link CompletionPort.associate}. */
  backend: 'io_uring' | 'thread-pool' | null
  /** Operations submitted to that backend (process-wide: every port on the backend). */
  submitted: number
  /** Operations completed (their packets posted), errors included. */
  completed: number
  /** Operations that completed with an error, cancellations included. */
  failed: number
  /** Operations that completed with `ECANCELED`. */
  cancelled: number
  /** Operations submitted and not yet completed. */
  inFlight: number
}

/** What the port must tell this module: its native port and whether it is closed. */
export interface IoTarget {
  readonly native: NativePort
  readonly binding: NativeBinding
  /** Throws PortClosedError when the port is closed (or shut down). */
  assertOpen(): void
  /** The wrapper's `options.io`, or `undefined`. */
  readonly preference: IoBackendName | undefined
}

const KIND_READ = 0
const KIND_WRITE = 1
const KIND_FSYNC = 2
/** The largest transfer Linux performs in one read or write (0x7ffff000). */
const MAX_LENGTH = 0x7fff_f000
const MAX_FD = 0x7fff_ffff

const OK = 0
const BAD_FD = 1
const NOT_FILE = 2
const ALREADY = 3
const NOT_ASSOCIATED = 4
const UNAVAILABLE = 5
const CAPACITY = 6

const PREFERENCES: Record<IoBackendName, number> = { auto: 0, 'thread-pool': 1, io_uring: 2 }

/**
 * Validates `options.io` (or the environment variable): one of the {@link IoBackendName}s.
 * @returns the name, or `undefined` when not given.
 */
export function validateIoBackend(name: string, value: unknown): IoBackendName | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !Object.hasOwn(PREFERENCES, value)) {
    throw Errors.invalidValue(name, "'auto', 'io_uring' or 'thread-pool'", value)
  }
  return value as IoBackendName
}

/** `options.io`, else `IOCP_IO_BACKEND`, else `undefined` (auto). */
function preferenceOf(target: IoTarget): IoBackendName | undefined {
  return target.preference ?? validateIoBackend(`process.env.${IO_BACKEND_ENV}`, process.env[IO_BACKEND_ENV] || undefined)
}

function validateFd(name: string, fd: unknown): asserts fd is number {
  validateInteger(name, fd, 0, MAX_FD, 'a file descriptor (an integer in [0, 2^31-1])')
}

/** A `Uint8Array` over the same bytes as `buffer`, after checking that it is safe to hand to I/O. */
function bytesOf(name: string, buffer: unknown): Uint8Array {
  if (!ArrayBuffer.isView(buffer)) {
    throw Errors.invalidType(name, 'a TypedArray or DataView over a SharedArrayBuffer', buffer)
  }
  const backing = buffer.buffer as ArrayBufferLike & { growable?: boolean; resizable?: boolean }
  if (Object.prototype.toString.call(backing) !== '[object SharedArrayBuffer]') {
    // The buffer belongs to the operation until its packet is dequeued, possibly by another
    // thread: an ArrayBuffer could be detached (transferred) or resized meanwhile, and only a
    // SharedArrayBuffer is visible to the thread that dequeues the packet.
    throw Errors.invalidValue(name, 'a view over a SharedArrayBuffer (not an ArrayBuffer)', buffer)
  }
  if (backing.growable === true) {
    throw Errors.invalidValue(name, 'a view over a fixed-length SharedArrayBuffer (not a growable one)', buffer)
  }
  return buffer instanceof Uint8Array ? buffer : new Uint8Array(backing, buffer.byteOffset, buffer.byteLength)
}

function lengthOf(name: string, length: unknown, bytes: Uint8Array, bufferName: string): number {
  if (length === undefined) {
    if (bytes.byteLength > MAX_LENGTH) {
      throw Errors.outOfRange(`${bufferName}.byteLength`, 'at most 2147479552 (0x7ffff000)', bytes.byteLength)
    }
    return bytes.byteLength
  }
  validateInteger(name, length, 0, MAX_LENGTH, 'an integer in [0, 0x7ffff000]')
  if (length > bytes.byteLength) {
    throw Errors.outOfRange(name, `at most ${bufferName}.byteLength (${bytes.byteLength}): the buffer is too small`, length)
  }
  return length
}

function validatePosition(name: string, position: unknown): asserts position is number {
  validateInteger(name, position, 0, Number.MAX_SAFE_INTEGER, 'a file offset (an integer in [0, 2^53-1])')
}

/** The error for a refused call (status from the addon). */
function refusal(target: IoTarget, status: number, fd: number): Error {
  switch (status) {
    case BAD_FD:
      return IoErrors.badFd(fd)
    case NOT_FILE:
      return IoErrors.notAFile(fd)
    case ALREADY:
      return IoErrors.alreadyAssociated(fd)
    case NOT_ASSOCIATED:
      target.assertOpen()  // closing a port ends its associations: say it is closed
      return IoErrors.notAssociated(fd)
    case UNAVAILABLE:
      return IoErrors.unavailable(fd, target.binding.ioWhy())
    case CAPACITY:
      return IoErrors.capacity(fd)
    default:
      return status < 0 ? IoErrors.system(fd, -status) : new Error(`@iocp/native returned an unexpected I/O status ${status}`)
  }
}

/** {@link CompletionPort.associate}. */
export function associate(target: IoTarget, fd: unknown, key: unknown): void {
  validateFd('fd', fd)
  validateU64('key', key)
  target.assertOpen()
  const preference = preferenceOf(target)
  const io = target.binding
  if (preference !== undefined && preference !== 'auto') {
    const configured = io.ioConfigure(target.native, PREFERENCES[preference])
    // ALREADY: the port's backend was chosen by an earlier association (perhaps in another thread).
    if (configured !== OK && configured !== ALREADY) throw refusal(target, configured, fd)
  }
  const status = io.ioAssociate(target.native, fd, key)
  if (status !== OK) throw refusal(target, status, fd)
}

/** {@link CompletionPort.dissociate}. */
export function dissociate(target: IoTarget, fd: unknown): void {
  validateFd('fd', fd)
  const status = target.binding.ioDissociate(target.native, fd)
  if (status !== OK) throw refusal(target, status, fd)
}

/** {@link CompletionPort.read} and {@link CompletionPort.write}. */
export function transfer(
  target: IoTarget,
  write: boolean,
  fd: unknown,
  buffer: unknown,
  position: unknown,
  overlapped: unknown,
  length: unknown,
): void {
  validateFd('fd', fd)
  const bytes = bytesOf('buffer', buffer)
  const count = lengthOf('length', length, bytes, 'buffer')
  validatePosition('position', position)
  validateU64('overlapped', overlapped)
  const status = target.binding.ioSubmit(target.native, write ? KIND_WRITE : KIND_READ, fd, bytes, position, count, overlapped)
  if (status !== OK) throw status < 0 ? IoErrors.submitFailed(fd, -status) : refusal(target, status, fd)
}

/** {@link CompletionPort.fsync}. */
export function fsync(target: IoTarget, fd: unknown, overlapped: unknown): void {
  validateFd('fd', fd)
  validateU64('overlapped', overlapped)
  const status = target.binding.ioSubmit(target.native, KIND_FSYNC, fd, undefined, 0, 0, overlapped)
  if (status !== OK) throw status < 0 ? IoErrors.submitFailed(fd, -status) : refusal(target, status, fd)
}

/** Doubles per request in the addon's batch layout (io_binding.cpp; checked at the first submit). */
const META_WORDS = 8
const M_KIND = 0
const M_FD = 1
const M_POSITION = 2
const M_LENGTH = 3
const M_VIEW = 4
const M_OFFSET = 5
const M_OVERLAPPED = 6
const M_OVERLAPPED_HI = 7
/** Added to the kind when the overlapped value is a bigint (split into two 32-bit halves). */
const KIND_BIGINT = 16
const MAX_U64 = 0xffff_ffff_ffff_ffffn

/** Per-thread scratch for {@link submit}: {@link META_WORDS} doubles per request. */
let meta = new Float64Array(META_WORDS * 64)
/** The distinct buffers of the batch being built, and one view over each (what the addon gets). */
const backings: SharedArrayBuffer[] = []
const views: ArrayBufferView[] = []
let layoutChecked = false

/** The index in {@link views} of a view over `backing` (added if the batch has none yet). */
function viewIndex(backing: SharedArrayBuffer, view: ArrayBufferView): number {
  // Batches usually read into one buffer: look at the last few only (a repeat is harmless).
  const n = backings.length
  for (let v = n - 1; v >= 0 && v >= n - 8; v--) if (backings[v] === backing) return v
  backings.push(backing)
  views.push(view)
  return n
}

/**
 * Writes request `i` into the scratch if it is valid, without building any message: the common
 * case. Returns false for anything unusual (an unknown key, a non-Uint8Array view, a value out of
 * range, ...): {@link slowRequest} then validates it with messages that name the argument.
 */
function fastRequest(request: unknown, i: number): boolean {
  if (typeof request !== 'object' || request === null) return false
  for (const key in request) {
    switch (key) {
      case 'op': case 'fd': case 'overlapped': case 'buffer': case 'position': case 'length': break
      default: return false
    }
  }
  const r = request as Record<string, unknown>
  const fd = r['fd']
  if (typeof fd !== 'number' || !((fd | 0) === fd && fd >= 0)) return false
  const at = i * META_WORDS
  const overlapped = r['overlapped']
  let kindBits = 0
  if (typeof overlapped === 'number') {
    if (!(Number.isSafeInteger(overlapped) && overlapped >= 0)) return false
    meta[at + M_OVERLAPPED] = overlapped
  } else if (typeof overlapped === 'bigint') {
    if (overlapped < 0n || overlapped > MAX_U64) return false
    kindBits = KIND_BIGINT
    meta[at + M_OVERLAPPED] = Number(overlapped & 0xffff_ffffn)
    meta[at + M_OVERLAPPED_HI] = Number(overlapped >> 32n)
  } else {
    return false
  }
  meta[at + M_FD] = fd
  const op = r['op']
  if (op === 'fsync') {
    if (r['buffer'] !== undefined || r['position'] !== undefined || r['length'] !== undefined) return false
    meta[at + M_KIND] = KIND_FSYNC + kindBits
    return true
  }
  if (op !== 'read' && op !== 'write') return false
  const buffer = r['buffer']
  if (!(buffer instanceof Uint8Array)) return false
  const backing = buffer.buffer
  if (!(backing instanceof SharedArrayBuffer) || (backing as { growable?: boolean }).growable === true) return false
  const position = r['position']
  if (!(Number.isSafeInteger(position) && (position as number) >= 0)) return false
  const length = r['length'] === undefined ? buffer.byteLength : r['length']
  if (typeof length !== 'number' || !((length >>> 0) === length && length <= MAX_LENGTH && length <= buffer.byteLength)) return false
  meta[at + M_KIND] = (op === 'read' ? KIND_READ : KIND_WRITE) + kindBits
  meta[at + M_POSITION] = position as number
  meta[at + M_LENGTH] = length
  meta[at + M_VIEW] = viewIndex(backing, buffer)
  meta[at + M_OFFSET] = buffer.byteOffset
  return true
}

/** Validates request `i` with messages that name it (`requests[3].position ...`), then writes it. */
function slowRequest(request: unknown, i: number): void {
  const name = `requests[${i}]`
  const r = validateOptions<Record<string, unknown>>(name, request, 'submit()', ['op', 'fd', 'overlapped', 'buffer', 'position', 'length'])
  const { op, fd, overlapped } = r
  validateFd(`${name}.fd`, fd)
  validateU64(`${name}.overlapped`, overlapped)
  const at = i * META_WORDS
  let kindBits = 0
  if (typeof overlapped === 'bigint') {
    kindBits = KIND_BIGINT
    meta[at + M_OVERLAPPED] = Number(overlapped & 0xffff_ffffn)
    meta[at + M_OVERLAPPED_HI] = Number(overlapped >> 32n)
  } else {
    meta[at + M_OVERLAPPED] = overlapped
  }
  meta[at + M_FD] = fd
  if (op === 'fsync') {
    meta[at + M_KIND] = KIND_FSYNC + kindBits
    return
  }
  if (op !== 'read' && op !== 'write') throw Errors.invalidValue(`${name}.op`, "'read', 'write' or 'fsync'", op)
  const bytes = bytesOf(`${name}.buffer`, r['buffer'])
  const length = lengthOf(`${name}.length`, r['length'], bytes, `${name}.buffer`)
  validatePosition(`${name}.position`, r['position'])
  meta[at + M_KIND] = (op === 'read' ? KIND_READ : KIND_WRITE) + kindBits
  meta[at + M_POSITION] = r['position']
  meta[at + M_LENGTH] = length
  meta[at + M_VIEW] = viewIndex(bytes.buffer as SharedArrayBuffer, bytes)
  meta[at + M_OFFSET] = bytes.byteOffset
}

/**
 * {@link CompletionPort.submit}: validates every request (without building a message unless one
 * is bad), then submits them all in one native call that makes no Node-API call per request.
 */
export function submit(target: IoTarget, requests: unknown): void {
  if (!Array.isArray(requests)) throw Errors.invalidType('requests', 'an array of I/O requests', requests)
  const count = requests.length
  if (count === 0) return
  if (!layoutChecked) {
    if (target.binding.IO_META_WORDS !== META_WORDS) {
      throw new Error('@iocp/native does not match this version of @iocp/core (I/O batch layout differs)')
    }
    layoutChecked = true
  }
  if (meta.length < count * META_WORDS) meta = new Float64Array(count * META_WORDS * 2)
  try {
    for (let i = 0; i < count; i++) {
      const request: unknown = requests[i]
      if (!fastRequest(request, i)) slowRequest(request, i)
    }
    const status = target.binding.ioSubmitMany(target.native, meta, views, count)
    if (status !== OK) {
      if (status < 0) throw IoErrors.submitFailed(meta[M_FD]!, -status)
      const index = status >>> 4
      throw refusal(target, status & 0xf, meta[index * META_WORDS + M_FD]!)
    }
  } finally {
    // The scratch keeps no buffer alive between calls.
    backings.length = 0
    views.length = 0
  }
}

/** {@link CompletionPort.cancel}. */
export function cancel(target: IoTarget, fd: unknown, overlapped: unknown): number {
  validateFd('fd', fd)
  if (overlapped !== undefined) validateU64('overlapped', overlapped)
  const result = target.binding.ioCancel(target.native, fd, overlapped as number | bigint | undefined)
  if (result < 0) throw refusal(target, -result, fd)
  return result
}

/**
 * Before the port closes (or shuts down): cancels its in-flight I/O and waits for it, so that
 * every completion is in the queue that close() returns (or shutdown() drains).
 */
export function settle(target: Pick<IoTarget, 'native' | 'binding'>): void {
  target.binding.ioClosePort(target.native)
}

const statsScratch = new Float64Array(5)

/** The I/O part of {@link CompletionPort.stats}. */
export function ioStats(target: Pick<IoTarget, 'native' | 'binding'>): IoStats {
  const backend = target.binding.ioStats(target.native, statsScratch)
  if (backend === undefined) {
    return { backend: null, submitted: 0, completed: 0, failed: 0, cancelled: 0, inFlight: 0 }
  }
  return {
    backend,
    submitted: statsScratch[0]!,
    completed: statsScratch[1]!,
    failed: statsScratch[2]!,
    cancelled: statsScratch[3]!,
    inFlight: statsScratch[4]!,
  }
}

const PAGE = 4096

/**
 * A view of `length` bytes over a new `SharedArrayBuffer`, starting on a page boundary (4096
 * bytes), for overlapped reads and writes. The kernel copies to and from page-aligned memory
 * several times faster than to a misaligned address, and a plain `new SharedArrayBuffer(n)` of
 * more than a few hundred KiB starts 16 bytes into a page (the allocator's header). Slices of the
 * view at multiples of 4096 stay aligned.
 *
 * @param length - bytes, an integer in [0, 2^31-1 - 4096].
 * @returns a `Uint8Array` whose `.buffer` is the (slightly larger) `SharedArrayBuffer`.
 * @throws {RangeError} `length` is out of range.
 */
export function allocateIoBuffer(length: number): Uint8Array {
  validateInteger('length', length, 0, 0x7fff_ffff - PAGE, 'an integer in [0, 2^31-1 - 4096]')
  const backing = new SharedArrayBuffer(length + PAGE)
  const probe = new Uint8Array(backing, 0, 1)
  const offset = (PAGE - thread().binding.ioPageOffset(probe)) % PAGE
  return new Uint8Array(backing, offset, length)
}
