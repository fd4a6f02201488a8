/**
 * How payloads, results and errors are encoded for stream entries. Values are `v8.serialize`d
 * (structured clone, as PortPool's payloads), except numbers and strings (see `encode`). Errors travel as a record and are rebuilt on the caller's side:
 * built-in classes keep their class, others become an `Error` with their `name`; `message`,
 * `stack` (the remote one), `code` and other own enumerable properties that can be cloned are kept,
 * `cause` recursively.
 */
import { deserialize, serialize } from 'node:v8'
import { RemoteTaskError } from './errors.js'

/**
 * Field names of a task in the dead-letter stream, one field per attribute so that it can be read by
 * hand (on the hot path a task is one binary frame: frame.ts).
 */
export const TaskField = {
  /** The task's sequence number at its client. */
  seq: 't',
  /** The client's reply stream. */
  reply: 'r',
  /** The task function's name ('' = the pool's default). */
  name: 'n',
  /** The payload, serialized. */
  payload: 'p',
  /** The idempotency key ('' = none). */
  idem: 'k',
  /** Handler failures in earlier deliveries (a requeued task carries its count). */
  failures: 'a',
  /** The most attempts allowed. */
  maxAttempts: 'm',
  /** '1' when the caller passed a signal: the forwarder checks for its cancellation. */
  cancellable: 'c',
} as const

interface ErrorRecord {
  readonly __iocpError: true
  readonly name: string
  readonly message: string
  readonly stack: string | undefined
  readonly props: Record<string, unknown>
  readonly cause?: unknown
  readonly errors?: unknown[]
}

const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
}

function cloneable(value: unknown): boolean {
  try {
    serialize(value)
    return true
  } catch {
    return false
  }
}

/** An error (or anything thrown) as something `v8.serialize` takes. */
export function errorRecord(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 8) return cloneable(error) ? error : String(error)
  const props: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(error)) {
    if (k !== 'cause' && k !== 'errors' && cloneable(v)) props[k] = v
  }
  const rec: ErrorRecord = {
    __iocpError: true,
    name: error.name,
    message: error.message,
    stack: error.stack,
    props,
    ...('cause' in error ? { cause: errorRecord(error.cause, depth + 1) } : {}),
    ...(error instanceof AggregateError ? { errors: error.errors.map((e) => errorRecord(e, depth + 1)) } : {}),
  }
  return rec
}

/** Rebuilds what {@link errorRecord} made. A thrown non-error becomes a {@link RemoteTaskError}. */
export function fromErrorRecord(value: unknown, top = true): unknown {
  const rec = value as Partial<ErrorRecord> | null
  if (rec === null || typeof rec !== 'object' || rec.__iocpError !== true) {
    return top ? new RemoteTaskError(`the remote task threw a non-error: ${String(value)}`, value) : value
  }
  const cause = 'cause' in rec ? { cause: fromErrorRecord(rec.cause, false) } : undefined
  let error: Error
  if (rec.errors) error = new AggregateError(rec.errors.map((e) => fromErrorRecord(e, false)), rec.message, cause)
  else error = new (BUILTIN[rec.name!] ?? Error)(rec.message, cause)
  if (error.name !== rec.name) Object.defineProperty(error, 'name', { value: rec.name, configurable: true, writable: true })
  if (rec.stack !== undefined) error.stack = rec.stack
  Object.assign(error, rec.props)
  return error
}

/*
 * Numbers and strings, the usual payloads and results of tiny tasks, skip v8's serializer (a
 * serializer object per value cost more than the rest of their trip through a forwarder): a tag
 * byte, then the float64 or the UTF-8. `v8.serialize` output always starts with its version tag
 * 0xFF, so the three never mix up; `undefined` is the empty value.
 */
const TAG_NUMBER = 0x01
const TAG_STRING = 0x02

/** Serializes a value for an entry. */
export function encode(value: unknown): Buffer {
  if (typeof value === 'number') {
    const b = Buffer.allocUnsafe(9)
    b[0] = TAG_NUMBER
    b.writeDoubleLE(value, 1)
    return b
  }
  if (typeof value === 'string') {
    const b = Buffer.allocUnsafe(1 + Buffer.byteLength(value))
    b[0] = TAG_STRING
    b.write(value, 1, 'utf8')
    return b
  }
  if (value === undefined) return EMPTY
  return serialize(value)
}

const EMPTY = Buffer.alloc(0)

/** Deserializes an entry's value. */
export function decode(buf: Buffer | undefined): unknown {
  if (buf === undefined || buf.length === 0) return undefined
  if (buf[0] === TAG_NUMBER && buf.length === 9) return buf.readDoubleLE(1)
  if (buf[0] === TAG_STRING) return buf.toString('utf8', 1)
  return deserialize(buf)
}
