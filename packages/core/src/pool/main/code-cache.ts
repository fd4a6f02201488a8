/**
 * The main thread's code cache of @iocp/core's bundle, left with the addon when the process's
 * first pool starts, so that its workers compile the bundle with it (see src/loader.cts).
 */
import { isMainThread } from 'node:worker_threads'
import { thread } from '../../port/thread-state.js'

type Sharer = (addon: { setCodeCache(bytes: Uint8Array): boolean }) => void

let sharer: Sharer | undefined

/**
 * Internal (dist/loader.cjs calls it on every thread): the function that leaves this thread's
 * code cache with the addon. Only the main thread's is used.
 */
export function setCodeCacheSharer(share: Sharer): void {
  sharer = isMainThread ? share : undefined
}

/** Leaves the main thread's code cache with the addon, once per process (later calls do nothing). */
export function shareCodeCacheOnce(): void {
  const share = sharer
  if (share === undefined) return
  sharer = undefined
  share(thread().binding)
}
