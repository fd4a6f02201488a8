/**
 * Every error @iocp/redis raises, made in one place, with stable codes. Bad arguments are
 * `TypeError` / `RangeError` with Node's codes, as in @iocp/core.
 */

/** Stable error codes of @iocp/redis. */
export const RedisErrorCode = {
  /** {@link RedisUnavailableError}: Redis could not be reached. */
  Unavailable: 'ERR_IOCP_REDIS_UNAVAILABLE',
  /** {@link DeadLetterError}: a task failed or was lost on every attempt and went to the dead-letter stream. */
  DeadLetter: 'ERR_IOCP_REDIS_DEAD_LETTER',
  /** {@link RemoteClosedError}: the object was closed. */
  Closed: 'ERR_IOCP_REDIS_CLOSED',
  /** {@link RemoteTaskError}: a task threw a value that is not an `Error`, or an error of an unknown class. */
  RemoteTask: 'ERR_IOCP_REDIS_REMOTE_TASK',
} as const

/**
 * Redis could not be reached when connecting (connection refused, DNS failure, timeout). The
 * message names the address; the client's own error is the `cause`.
 */
export class RedisUnavailableError extends Error {
  /** Always `'ERR_IOCP_REDIS_UNAVAILABLE'`. */
  readonly code = RedisErrorCode.Unavailable
  override readonly name = 'RedisUnavailableError'
}

/**
 * The task was given up: its handler failed `maxAttempts` times, or it was delivered
 * `maxAttempts` times to consumers that died with it. The task is on the dead-letter stream;
 * `cause` is the last error when there was one.
 */
export class DeadLetterError extends Error {
  /** Always `'ERR_IOCP_REDIS_DEAD_LETTER'`. */
  readonly code = RedisErrorCode.DeadLetter
  override readonly name = 'DeadLetterError'
  /** How many times the task was delivered. */
  readonly attempts: number
  /** The dead-letter stream's key. */
  readonly stream: string

  constructor(message: string, attempts: number, stream: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.attempts = attempts
    this.stream = stream
  }
}

/** A method was called on a closed `RemotePort`, `RemotePool` or forwarder. */
export class RemoteClosedError extends Error {
  /** Always `'ERR_IOCP_REDIS_CLOSED'`. */
  readonly code = RedisErrorCode.Closed
  override readonly name = 'RemoteClosedError'
}

/**
 * A remote task threw something that is not an `Error` (a string, a number...): it is carried
 * as `value`. (Errors are rebuilt as errors: see docs/scale-out.md.)
 */
export class RemoteTaskError extends Error {
  /** Always `'ERR_IOCP_REDIS_REMOTE_TASK'`. */
  readonly code = RedisErrorCode.RemoteTask
  override readonly name = 'RemoteTaskError'
  /** The value the task threw. */
  readonly value: unknown

  constructor(message: string, value: unknown) {
    super(message)
    this.value = value
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (value === null || typeof value !== 'object') return String(value)
  return `an instance of ${value.constructor?.name ?? 'Object'}`
}

/** A `TypeError` with Node's `ERR_INVALID_ARG_TYPE` code. */
export function invalidType(name: string, expected: string, value: unknown): TypeError {
  return Object.assign(new TypeError(`${name} must be ${expected}, got ${describe(value)}`), {
    code: 'ERR_INVALID_ARG_TYPE',
  })
}

/** A `RangeError` with Node's `ERR_OUT_OF_RANGE` code. */
export function outOfRange(name: string, expected: string, value: unknown): RangeError {
  return Object.assign(new RangeError(`${name} must be ${expected}, got ${describe(value)}`), {
    code: 'ERR_OUT_OF_RANGE',
  })
}

/** Checks an optional integer option in [min, max]; returns it or `fallback`. */
export function intOption(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidType(name, `an integer in [${min}, ${max}]`, value)
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer in [${min}, ${max}]`, value)
  return value
}

/** Checks an optional non-empty string option; returns it or `fallback`. */
export function stringOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw invalidType(name, 'a non-empty string', value)
  return value
}
