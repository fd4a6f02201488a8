/**
 * The V8 code cache of @iocp/core's bundle that threads leave with the addon, so that the threads
 * started after them compile the bundle with it (see src/loader.cts and the addon's
 * src/binding/code_cache.cpp):
 * - the main thread leaves its cache when the process's first pool starts, so that even that
 *   pool's first worker compiles with a cache;
 * - the first pool worker that has run a task and gone idle leaves its own, once per process. It
 *   holds what a worker runs (its loop, the codec, the task context), which the main thread
 *   never compiled, so the workers after it skip those compiles too; it replaces the main
 *   thread's.
 */
import { isMainThread } from 'node:worker_threads'
import type { NativeBinding } from '@iocp/native'
import { thread } from '../../port/thread-state.js'

type CodeCacheStore = Pick<NativeBinding, 'setCodeCache' | 'codeCacheFromWorker'>

type Sharer = (addon: CodeCacheStore, fromWorker: boolean) => void

let sharer: Sharer | undefined

/**
 * Internal (dist/loader.cjs calls it on every thread): the function that leaves this thread's
 * code cache with the addon.
 */
export function setCodeCacheSharer(share: Sharer): void {
  sharer = share
}

/** Leaves the main thread's code cache with the addon, once per process (later calls do nothing). */
export function shareCodeCacheOnce(): void {
  const share = sharer
  if (share === undefined || !isMainThread) return
  sharer = undefined
  share(thread().binding, false)
}

/**
 * In a pool worker that has run a task and has nothing to do: leaves this worker's code cache
 * with the addon, unless a worker has already left one (checked first: making a cache costs a
 * few milliseconds). Once per thread.
 */
export function shareWorkerCodeCacheOnce(): void {
  const share = sharer
  if (share === undefined || isMainThread) return
  sharer = undefined
  const addon = thread().binding
  if (!addon.codeCacheFromWorker()) share(addon, true)
}
