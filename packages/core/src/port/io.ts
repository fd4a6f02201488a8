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
  if (status !== OK) throw refusal(target, status, fd)
}

/** {@link CompletionPort.fsync}. */
export function fsync(target: IoTarget, fd: unknown, overlapped: unknown): void {
  validateFd('fd', fd)
  validateU64('overlapped', overlapped)
  const status = target.binding.ioSubmit(target.native, KIND_FSYNC, fd, undefined, 0, 0, overlapped)
  if (status !== OK) throw refusal(target, status, fd)
}

/** Per-thread scratch for {@link submit}: 4 doubles per request (kind, fd, position, length). */
let meta = new Float64Array(4 * 64)

/** {@link CompletionPort.submit}: validates every request, then submits them all in one call. */
export function submit(target: IoTarget, requests: unknown): void {
  if (!Array.isArray(requests)) throw Errors.invalidType('requests', 'an array of I/O requests', requests)
  const count = requests.length
  if (meta.length < count * 4) meta = new Float64Array(count * 8)
  const views: Array<Uint8Array | undefined> = new Array(count)
  const overlappeds: Array<number | bigint> = new Array(count)
  for (let i = 0; i < count; i++) {
    const name = `requests[${i}]`
    const request = validateOptions<Record<string, unknown>>(name, requests[i] as unknown, 'submit()', ['op', 'fd', 'overlapped', 'buffer', 'position', 'length'])
    const { op, fd, overlapped } = request
    validateFd(`${name}.fd`, fd)
    validateU64(`${name}.overlapped`, overlapped)
    overlappeds[i] = overlapped
    meta[i * 4 + 1] = fd
    if (op === 'fsync') {
      meta[i * 4] = KIND_FSYNC
      meta[i * 4 + 2] = 0
      meta[i * 4 + 3] = 0
      continue
    }
    if (op !== 'read' && op !== 'write') throw Errors.invalidValue(`${name}.op`, "'read', 'write' or 'fsync'", op)
    const bytes = bytesOf(`${name}.buffer`, request['buffer'])
    const length = lengthOf(`${name}.length`, request['length'], bytes, `${name}.buffer`)
    validatePosition(`${name}.position`, request['position'])
    meta[i * 4] = op === 'read' ? KIND_READ : KIND_WRITE
    meta[i * 4 + 2] = request['position']
    meta[i * 4 + 3] = length
    views[i] = bytes
  }
  if (count === 0) return
  const status = target.binding.ioSubmitMany(target.native, meta, views, overlappeds, count)
  if (status !== OK) {
    const index = status >>> 4
    throw refusal(target, status & 0xf, meta[index * 4 + 1]!)
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
