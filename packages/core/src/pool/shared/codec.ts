/**
 * How a task's payload, its result and its error travel in completion packets.
 *
 * One packet carries one value: the packet's `key` names the encoding (and, for tasks, the
 * task name), `bytes` and part of the key carry a number's 64 bits, and `data` carries
 * everything else. The fast paths post no `data` at all:
 *
 * | value                     | encoding    | where it travels                                 |
 * | ------------------------- | ----------- | ------------------------------------------------ |
 * | `undefined`, `null`, booleans | its own tag | the tag alone                                |
 * | a number                  | `NUMBER`    | the float64's high word in the key, low word in `bytes` |
 * | a string                  | `STRING`    | UTF-8 in `data` (none for `''`)                  |
 * | a `Uint8Array` / `Buffer` | `BYTES`     | its bytes in `data` (delivered as a `Uint8Array`) |
 * | anything else             | `V8`        | `v8.serialize()` in `data` (structured clone)    |
 * | a thrown error            | `ERROR`     | a record of name, message, stack, own properties and cause |
 *
 * Key layout. A task packet's key is `TASK_BASE + (name * 16 + encoding) * 2^32 + high word`:
 * numbers in [2^52, 2^53) (the name index takes 16 bits, the encoding 4). Keys below 2^52, and
 * bigint keys (which the port returns as bigints), are the user's raw packets. A result
 * packet's key is `encoding * 2^32 + high word`, on the pool's private results port.
 * `overlapped` is always the task's id (see pool/shared/memory.ts).
 */
import type * as V8 from 'node:v8'
// node:util, not node:util/types: every thread has loaded node:util by the time it runs our code,
// node:util/types not, and a new worker loads this file on its way to the pool's first result.
import { types } from 'node:util'
import { PortClosedError, PortFullError } from '../../errors.js'
import { AbortError, PoolClosedError, QueueFullError, TaskModuleError, WorkerDiedError } from './errors.js'
import { PISCINA_TRANSFERABLE, PISCINA_VALUE } from './piscina-symbols.js'

const TWO_32 = 0x1_0000_0000
/** The first key of the pool's task packets: 2^52. */
export const TASK_BASE = 2 ** 52
/** The most task names a pool can tell apart (the name index has 16 bits). */
export const MAX_NAMES = 0x1_0000

// Encodings (4 bits).
export const ENC_UNDEFINED = 0
export const ENC_NULL = 1
export const ENC_TRUE = 2
export const ENC_FALSE = 3
export const ENC_NUMBER = 4
export const ENC_STRING = 5
export const ENC_BYTES = 6
export const ENC_V8 = 7
/** Task: the payload waits in the main thread, to be fetched over the loop's MessagePort. */
export const ENC_SIDE = 8
/** Result: the task threw (data: an error record). */
export const ENC_ERROR = 9
/** Result: the task was aborted while queued and skipped (no data). */
export const ENC_SKIPPED = 10
/** Result: the task module failed to load (data: an error record; overlapped: 0). */
export const ENC_LOAD_FAILED = 11
/** Result: a raw packet's handler threw (data: v8 of { key, bytes, overlapped, error record }). */
export const ENC_PACKET_ERROR = 12

/** The float64 <-> two uint32 words scratch. */
const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const LO = LITTLE_ENDIAN ? 0 : 1
const HI = LITTLE_ENDIAN ? 1 : 0

const utf8 = new TextDecoder()

/** The output of {@link encodeValue}: a reused object, read it before the next call. */
export interface Encoded {
  /** The high word of a number (goes into the key). */
  hi: number
  /** The low word of a number (goes into `bytes`). */
  lo: number
  /** The packet's payload, if any. */
  data: Uint8Array | undefined
}

/** A reusable {@link Encoded}. */
export function encoded(): Encoded {
  return { hi: 0, lo: 0, data: undefined }
}

/**
 * Encodes `value` into `out` and returns its encoding.
 * @throws whatever `v8.serialize` throws for a value that cannot be cloned (a function, a
 *   symbol, a class instance holding one...).
 */
export function encodeValue(value: unknown, out: Encoded): number {
  switch (typeof value) {
    case 'number':
      f64[0] = value
      out.hi = u32[HI]!
      out.lo = u32[LO]!
      out.data = undefined
      return ENC_NUMBER
    case 'string':
      out.hi = 0
      out.lo = 0
      out.data = value.length === 0 ? undefined : Buffer.from(value, 'utf8')
      return ENC_STRING
    case 'undefined':
      out.data = undefined
      return ENC_UNDEFINED
    case 'boolean':
      out.data = undefined
      return value ? ENC_TRUE : ENC_FALSE
    case 'object':
      if (value === null) {
        out.data = undefined
        return ENC_NULL
      }
      if (types.isUint8Array(value) && !(value.buffer instanceof SharedArrayBuffer)) {
        out.hi = 0
        out.lo = 0
        out.data = value
        return ENC_BYTES
      }
      break
    default:
      break
  }
  out.hi = 0
  out.lo = 0
  out.data = serialize(value)
  return ENC_V8
}

/** Thrown while serializing a value that holds shared memory, which a packet cannot carry. */
class SharedMemoryRefused extends Error {}

/**
 * node:v8, loaded on first use: numbers, strings, bytes and the like never need it, and loading
 * it is part of a new worker's way to its first task otherwise.
 */
let v8Module: typeof V8 | undefined
function v8(): typeof V8 {
  return (v8Module ??= process.getBuiltinModule('node:v8'))
}

/**
 * `v8.serialize`, except that a typed array over a SharedArrayBuffer is refused (v8's default
 * serializer would copy its bytes, so the receiver would not share it) as a bare
 * SharedArrayBuffer already is: the caller then sends the value by postMessage, which shares it.
 * A class made on first use, as it extends node:v8's.
 */
let PacketSerializer: (new () => V8.Serializer) | undefined
function packetSerializer(): new () => V8.Serializer {
  return (PacketSerializer ??= class extends v8().DefaultSerializer {
    // Node's hook for host objects (typed arrays, Buffers); not in @types/node, hence no `override`.
    _writeHostObject(object: object): void {
      if (ArrayBuffer.isView(object) && object.buffer instanceof SharedArrayBuffer) throw new SharedMemoryRefused()
      ;(v8().DefaultSerializer.prototype as unknown as { _writeHostObject(o: object): void })._writeHostObject.call(this, object)
    }
  })
}

function serialize(value: unknown): Buffer {
  const serializer = new (packetSerializer())()
  serializer.writeHeader()
  serializer.writeValue(value)
  return serializer.releaseBuffer()
}

/**
 * Decodes a value encoded by {@link encodeValue}.
 * @throws {Error} `enc` is not a value encoding (a bug, or a foreign packet).
 */
export function decodeValue(enc: number, hi: number, lo: number, data: Uint8Array | undefined): unknown {
  switch (enc) {
    case ENC_NUMBER:
      u32[HI] = hi
      u32[LO] = lo
      return f64[0]
    case ENC_STRING:
      return data === undefined ? '' : utf8.decode(data)
    case ENC_BYTES:
      return data ?? new Uint8Array(0)
    case ENC_UNDEFINED:
      return undefined
    case ENC_NULL:
      return null
    case ENC_TRUE:
      return true
    case ENC_FALSE:
      return false
    case ENC_V8:
      return v8().deserialize(data ?? new Uint8Array(0))
    default:
      throw new Error(`@iocp/core: unknown value encoding ${enc}`)
  }
}


/**
 * The value inside a `Piscina.move()` wrapper, or `value` itself. A moved value is copied
 * here (packets carry bytes), so its transfer list plays no part.
 */
export function unwrapMovable(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && PISCINA_VALUE in value && PISCINA_TRANSFERABLE in value) {
    return (value as Record<symbol, unknown>)[PISCINA_VALUE]
  }
  return value
}

/** The key of a task packet. */
export function taskKey(enc: number, name: number, hi: number): number {
  return TASK_BASE + (name * 16 + enc) * TWO_32 + hi
}

/** The key of a result packet. */
export function resultKey(enc: number, hi: number): number {
  return enc * TWO_32 + hi
}

/** The tag (`name * 16 + encoding`, or just the encoding for results) of a key relative to its base. */
export function tagOf(relativeKey: number): number {
  return Math.floor(relativeKey / TWO_32)
}

/** The high word of a key relative to its base, given its tag. */
export function hiOf(relativeKey: number, tag: number): number {
  return relativeKey - tag * TWO_32
}

/** Whether a packet key is one of the pool's task packets (a number in [2^52, 2^53)). */
export function isTaskKey(key: number | bigint): key is number {
  return typeof key === 'number' && key >= TASK_BASE
}

// --- errors ------------------------------------------------------------------------------------

/** A thrown value as it crosses threads. */
type ErrorRecord =
  | {
      readonly error: true
      readonly name: string
      readonly message: string
      readonly stack: string | undefined
      readonly props: Record<string, unknown>
      readonly cause?: ErrorRecord
      readonly errors?: ErrorRecord[]
    }
  | { readonly error: false; readonly value: unknown }

const MAX_DEPTH = 8

function clonable(value: unknown): boolean {
  try {
    v8().serialize(value)
    return true
  } catch {
    return false
  }
}

function recordOf(thrown: unknown, depth: number): ErrorRecord {
  if (!(thrown instanceof Error) || depth > MAX_DEPTH) {
    // Not an Error (or nested too deep): the value itself if it clones, else its description.
    return clonable(thrown) ? { error: false, value: thrown } : { error: false, value: String(thrown) }
  }
  const props: Record<string, unknown> = {}
  for (const key of Object.keys(thrown)) {
    if (key === 'cause' || key === 'errors') continue
    const value = (thrown as unknown as Record<string, unknown>)[key]
    if (clonable(value)) props[key] = value
  }
  const record: {
    error: true
    name: string
    message: string
    stack: string | undefined
    props: Record<string, unknown>
    cause?: ErrorRecord
    errors?: ErrorRecord[]
  } = {
    error: true,
    name: String(thrown.name),
    message: String(thrown.message),
    stack: typeof thrown.stack === 'string' ? thrown.stack : undefined,
    props,
  }
  if (Object.prototype.hasOwnProperty.call(thrown, 'cause')) {
    record.cause = recordOf((thrown as { cause?: unknown }).cause, depth + 1)
  }
  const errors = (thrown as { errors?: unknown }).errors
  if (Array.isArray(errors)) record.errors = errors.map((e: unknown) => recordOf(e, depth + 1))
  return record
}

/**
 * Serializes a thrown value: an `Error` keeps its name, message, stack, own enumerable
 * properties that can be cloned, its `cause` and (for an `AggregateError`) its `errors`;
 * anything else is cloned as it is (or, if it cannot be, as its string form).
 */
export function encodeError(thrown: unknown): Uint8Array {
  return v8().serialize(recordOf(thrown, 0))
}

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
}

/**
 * The error classes of this package, rebuilt as themselves (their fields are own properties,
 * so the record carries them).
 */
const OWN_ERRORS: Record<string, { prototype: Error }> = {
  PortClosedError,
  PortFullError,
  AbortError,
  PoolClosedError,
  QueueFullError,
  TaskModuleError,
  WorkerDiedError,
}

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable })
}

function errorOf(record: ErrorRecord): unknown {
  if (!record.error) return record.value
  let error: Error
  const builtin = Object.hasOwn(BUILTIN_ERRORS, record.name) ? BUILTIN_ERRORS[record.name] : undefined
  const own = Object.hasOwn(OWN_ERRORS, record.name) ? OWN_ERRORS[record.name] : undefined
  if (own !== undefined) {
    error = Object.create(own.prototype) as Error
    define(error, 'message', record.message, false)
  } else if (builtin !== undefined) {
    error = new builtin(record.message)
  } else if (record.name === 'AggregateError') {
    error = new AggregateError((record.errors ?? []).map(errorOf), record.message)
  } else if (record.name === 'AbortError' || record.name === 'DataCloneError' || record.name === 'TimeoutError') {
    error = new DOMException(record.message, record.name)
  } else {
    error = new Error(record.message)
    define(error, 'name', record.name, false)
  }
  if (record.stack !== undefined) define(error, 'stack', record.stack, false)
  for (const key of Object.keys(record.props)) define(error, key, record.props[key], true)
  if (record.cause !== undefined) define(error, 'cause', errorOf(record.cause), false)
  if (record.errors !== undefined && record.name !== 'AggregateError') {
    define(error, 'errors', record.errors.map(errorOf), false)
  }
  return error
}

/** Rebuilds a value serialized by {@link encodeError}. */
export function decodeError(data: Uint8Array | undefined): unknown {
  if (data === undefined) return new Error('@iocp/core: an error record was lost')
  return errorOf(v8().deserialize(data) as ErrorRecord)
}
