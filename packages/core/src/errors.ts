/**
 * Every error @iocp/core raises, made in one place.
 *
 * The port's own conditions have classes with stable `code`s ({@link PortClosedError},
 * {@link PortFullError}); bad arguments are plain `TypeError` / `RangeError` carrying Node's own
 * codes (`ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`, `ERR_INVALID_ARG_VALUE`), so code that
 * already branches on Node's errors keeps working. The rest of the package never writes
 * `new SomethingError(...)` itself: it calls {@link Errors}.
 */
import { types } from 'node:util'

/** Stable error codes of @iocp/core, for `err.code === ErrorCode.PortClosed` checks. */
export const ErrorCode = {
  /** {@link PortClosedError}: the port is closed, or shut down (and, for a get, drained). */
  PortClosed: 'ERR_IOCP_PORT_CLOSED',
  /** {@link PortFullError}: the port has a capacity and its queue is full. */
  PortFull: 'ERR_IOCP_PORT_FULL',
  /** An argument has the wrong type (a `TypeError`). */
  InvalidArgType: 'ERR_INVALID_ARG_TYPE',
  /** A numeric argument is outside its range (a `RangeError`). */
  OutOfRange: 'ERR_OUT_OF_RANGE',
  /** An argument has the right type but a value that cannot be used (a `TypeError`). */
  InvalidArgValue: 'ERR_INVALID_ARG_VALUE',
  /**
   * Another copy of @iocp/core, of an incompatible version, already drives @iocp/native in this
   * thread (an `Error`): install one version of @iocp/core.
   */
  IncompatibleCopy: 'ERR_IOCP_INCOMPATIBLE_COPY',
} as const

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/**
 * The port is closed: {@link CompletionPort.close} was called (in any thread), or the port was
 * shut down and, for a get, has nothing left to deliver. Every waiter blocked in `get()` /
 * `getMany()` wakes with it, every pending `getAsync()` rejects with it, and every later call on
 * the port throws it (or, for `getAsync()`, rejects with it). The counterpart of IOCP's
 * `ERROR_ABANDONED_WAIT_0`.
 */
export class PortClosedError extends Error {
  /** Always `'ERR_IOCP_PORT_CLOSED'`. */
  readonly code: typeof ErrorCode.PortClosed = ErrorCode.PortClosed
  override readonly name = 'PortClosedError'
}

/**
 * `post()` found the queue of a port with a `capacity` full. Nothing was posted: retry later,
 * drop the packet, or post it elsewhere. A `RangeError`, so generic `RangeError` handling sees it.
 */
export class PortFullError extends RangeError {
  /** Always `'ERR_IOCP_PORT_FULL'`. */
  readonly code: typeof ErrorCode.PortFull = ErrorCode.PortFull
  override readonly name = 'PortFullError'
  /** The capacity of the port that refused the packet. */
  readonly capacity: number

  constructor(message: string, capacity: number) {
    super(message)
    this.capacity = capacity
  }
}

/** A `TypeError` or `RangeError` that carries one of Node's argument-error codes. */
type CodedError<E extends Error> = E & { code: ErrorCode }

function coded<E extends Error>(error: E, code: ErrorCode): CodedError<E> {
  return Object.assign(error, { code })
}

/**
 * A short, readable rendering of a value for an error message: `-1`, `1.5`, `-1n`, `'abc'`,
 * `null`, `undefined`, `an instance of Array`, `a function`, `a Proxy`. Runs none of the value's
 * own code (no getter, no Proxy trap, no `toString`).
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint':
      return `${value}n`
    case 'string':
      return JSON.stringify(value.length > 28 ? `${value.slice(0, 25)}...` : value)
    case 'boolean':
    case 'undefined':
    case 'symbol':
      return String(value)
    case 'function':
      return 'a function'
    default: {
      if (value === null) return 'null'
      // Rendering a bad argument must not run the caller's code (a Proxy trap, a `constructor`
      // getter) nor throw anything but the error being built.
      if (types.isProxy(value)) return 'a Proxy'
      let name: unknown
      try {
        name = (value as { constructor?: { name?: unknown } }).constructor?.name
      } catch {
        name = undefined
      }
      return typeof name !== 'string' || name === '' || name === 'Object' ? 'an object' : `an instance of ${name}`
    }
  }
}

/**
 * The error-factory table: every error @iocp/core raises comes from here, so messages and codes
 * stay stable and greppable.
 */
export const Errors = {
  /** The port is closed (or shut down and drained). */
  portClosed: (): PortClosedError => new PortClosedError('The completion port is closed'),
  /** The port's queue is at its capacity. */
  portFull: (capacity: number): PortFullError =>
    new PortFullError(
      `The completion port is full (capacity ${capacity}); nothing was posted`,
      capacity,
    ),
  /** `name` has the wrong type: "`name` must be `expected`, got `value`". */
  invalidType: (name: string, expected: string, value: unknown): CodedError<TypeError> =>
    coded(new TypeError(`${name} must be ${expected}, got ${describe(value)}`), ErrorCode.InvalidArgType),
  /** `name` is a number outside its range: "`name` must be `expected`, got `value`". */
  outOfRange: (name: string, expected: string, value: unknown): CodedError<RangeError> =>
    coded(new RangeError(`${name} must be ${expected}, got ${describe(value)}`), ErrorCode.OutOfRange),
  /**
   * The options bag `name` has a key that is not one of `known` (a misspelling, most likely):
   * "`name`.`key` is not an option of `owner` (the options are ...)".
   */
  unknownOption: (name: string, key: string, owner: string, known: readonly string[]): CodedError<TypeError> =>
    coded(
      new TypeError(
        `${name}.${key} is not an option of ${owner} (the options are ${known.join(', ')}); check its spelling`,
      ),
      ErrorCode.InvalidArgValue,
    ),
  /**
   * Two copies of @iocp/core that share one @iocp/native speak different versions of their
   * per-thread protocol (port/thread-state.ts), so they cannot share this thread's addon.
   */
  incompatibleCopy: (theirs: number, ours: number): CodedError<Error> =>
    coded(
      new Error(
        `Another copy of @iocp/core (thread-state protocol ${theirs}) already uses @iocp/native in this thread, ` +
          `and this copy speaks protocol ${ours}: two versions of @iocp/core share one @iocp/native. ` +
          'Install a single version of @iocp/core (check `npm ls @iocp/core`).',
      ),
      ErrorCode.IncompatibleCopy,
    ),
  /** `name` has the right type but an unusable value. */
  invalidValue: (name: string, expected: string, value: unknown): CodedError<TypeError> =>
    coded(new TypeError(`${name} must be ${expected}, got ${describe(value)}`), ErrorCode.InvalidArgValue),
  /**
   * The rejection of an aborted operation, as the web platform and Node's promise APIs do it:
   * the signal's `reason` (by default a `DOMException` named `'AbortError'`), or a fresh
   * `DOMException('This operation was aborted', 'AbortError')` when the reason is `undefined`.
   * If the signal's `reason` getter throws, what it threw is the rejection (this never throws:
   * it runs inside abort listeners, where a throw would leave a promise pending).
   */
  aborted: (signal: AbortSignal): unknown => {
    let reason: unknown
    try {
      reason = signal.reason
    } catch (error) {
      return error
    }
    return reason !== undefined ? reason : new DOMException('This operation was aborted', 'AbortError')
  },
} as const
