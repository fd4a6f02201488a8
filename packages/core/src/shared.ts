/**
 * Small helpers and limits shared by the port and the pool (main thread and workers alike):
 * one place for each, so that no file keeps its own copy.
 */

/**
 * The bundle's own `require()`: @iocp/core runs as one CommonJS file (dist/core.cjs, see
 * src/loader.cts), and it resolves from dist/ as `createRequire(import.meta.url)` would. Using it
 * spares each new pool worker loading `node:module`, which nothing else there needs.
 */
export const bundleRequire: NodeJS.Require = require

/** Does nothing: a listener or callback that must exist but has nothing to do. */
export function noop(): void {}

/** `value` has a callable `then` (a promise, or any thenable `await` would follow). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/** 2^32 - 1: the largest `bytes` value. */
export const MAX_U32 = 0xffff_ffff
/** 2^64 - 1: the largest `bigint` key or overlapped value. */
export const MAX_U64 = 0xffff_ffff_ffff_ffffn
/**
 * The largest finite timeout honoured as such, 2^31-1 ms (about 24.8 days, the largest delay
 * `setTimeout` accepts). Longer finite timeouts are treated as infinite.
 */
export const MAX_TIMEOUT_MS = 0x7fff_ffff
/** The most worker threads a pool option may ask for. */
export const MAX_THREADS = 0x1_0000

/** The result of {@link waitAsync}. */
export type AsyncWait =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> }

/**
 * `Atomics.waitAsync` (ES2024; in every Node.js this package supports, but not in the ES2022
 * library typings): waits without blocking until `cells[index]` is notified while not `value`.
 */
export const waitAsync = (Atomics as unknown as {
  waitAsync(cells: Int32Array, index: number, value: number, timeout?: number): AsyncWait
}).waitAsync

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
