/**
 * The portable name of a port: a plain object that survives structured cloning (`workerData`,
 * `postMessage`), so a port made in one thread can be opened in another with
 * {@link CompletionPort.fromHandle}.
 */
import { Errors } from '../errors.js'

/**
 * A structured-clonable reference to a port, from {@link CompletionPort.handle}. Pass it to
 * another thread and open it there with {@link CompletionPort.fromHandle}.
 *
 * `id` names the port in the process; `pin` is a token that keeps the port alive while the
 * handle is in flight (between the read of {@link CompletionPort.handle} and the `fromHandle`
 * that opens it), so a handle sent before the sender drops its wrapper still opens.
 * Treat both as opaque.
 */
export interface PortHandle {
  /** Always `'iocp.port'`: tells a handle apart from other objects in a message. */
  readonly kind: 'iocp.port'
  /** The port's id in this process. */
  readonly id: number
  /** The keep-alive token of this handle. */
  readonly pin: number
}

const EXPECTED = "a PortHandle ({ kind: 'iocp.port', id, pin }) from CompletionPort#handle"

/** Makes a handle from the addon's `[id, pin]`. */
export function makeHandle(id: number, pin: number): PortHandle {
  return { kind: 'iocp.port', id, pin }
}

/**
 * Checks that `value` is a well-formed {@link PortHandle}: `kind` is `'iocp.port'`, `id` and
 * `pin` are non-negative safe integers.
 * @throws {TypeError} naming `handle`, for anything else.
 */
export function validateHandle(value: unknown): asserts value is PortHandle {
  if (value === null || typeof value !== 'object') throw Errors.invalidType('handle', EXPECTED, value)
  const { kind, id, pin } = value as Record<string, unknown>
  if (kind !== 'iocp.port' || !isIndex(id) || !isIndex(pin)) {
    throw Errors.invalidValue('handle', EXPECTED, value)
  }
}

function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}
