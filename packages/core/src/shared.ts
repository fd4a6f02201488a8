/**
 * Small helpers that more than one part of @iocp/core needs, kept in one place.
 */

/**
 * The `then` method of `value` if it is a thenable, else `undefined`. Reads `then` exactly once,
 * as promise resolution does, so a getter that answers differently on a second read cannot
 * disagree with itself. A getter that throws makes this throw: callers treat that as a failure
 * of whatever produced `value`, and must restore their own state first.
 */
export function thenOf(value: unknown): ((onFulfilled: (v: unknown) => void, onRejected: (e: unknown) => void) => unknown) | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined
  const then: unknown = (value as { then?: unknown }).then
  return typeof then === 'function' ? (then as ReturnType<typeof thenOf>) : undefined
}
