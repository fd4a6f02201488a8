/**
 * Loads dist/core.cjs, @iocp/core's bundle (scripts/bundle.mjs), once per thread: the package's
 * ES entry (dist/index.js) and a pool worker's entry (dist/worker-entry.cjs) both take it from
 * here, and Node keeps one instance of this file per thread.
 *
 * Why not a plain require(): a PortPool worker is a new thread that compiles the whole bundle on
 * its way to its first task. V8 can skip most of that work with a code cache, so:
 * - the main thread compiles the bundle as usual, and when it starts its first pool it leaves a
 *   code cache of it with the addon, once per process;
 * - any other thread compiles the bundle with that cache when there is one. V8 checks that a
 *   cache fits (same source, same V8 and flags) and compiles from scratch when it does not.
 *
 * The bundle runs as a CommonJS module would: the same arguments, this file's require() (the
 * bundle sits beside it, so it resolves the same) and its file name in stack traces; its one import() (of ES task modules) is this file's. With
 * --enable-source-maps it is required as usual (Node maps the frames only of what its own
 * loaders compiled), without a cache.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Script } from 'node:vm'
import { isMainThread } from 'node:worker_threads'
import type { NativeBinding } from '@iocp/native'

type CodeCacheStore = Pick<NativeBinding, 'setCodeCache' | 'codeCache'>

type Exports = Record<string | symbol, unknown>

const file = join(__dirname, 'core.cjs')

/** Runs the bundle from `script` as Node runs a CommonJS module; returns its exports. */
function run(script: Script): Exports {
  const bundle: { exports: Exports } = { exports: {} }
  ;(script.runInThisContext() as (...args: unknown[]) => void)(bundle.exports, require, bundle, file, __dirname)
  return bundle.exports
}

/** The addon, or undefined when it does not load. */
function codeCacheStore(): CodeCacheStore | undefined {
  try {
    return require('@iocp/native') as CodeCacheStore
  } catch {
    return undefined
  }
}

/** The bundle's exports, and how this thread compiled it (for tests and diagnostics). */
function load(): { exports: Exports; compiledWith: string } {
  // Node maps stack frames through source maps (--enable-source-maps) only for what its own
  // loaders compiled: then the bundle is required as usual, and compiled without a cache.
  if (process.sourceMapsEnabled) return { exports: require('./core.cjs') as Exports, compiledWith: 'require() (source maps on)' }
  // A thread other than the main one loads the addon here, first: the bundle needs it anyway,
  // and it holds the process's code cache. If it does not load, the bundle says why when a port
  // is first used, as on the main thread.
  const store = isMainThread ? undefined : codeCacheStore()
  // The bundle is ASCII (scripts/bundle.mjs checks it), so latin1 reads it as UTF-8 would, faster.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'latin1')}\n})`, {
    filename: file,
    cachedData: store?.codeCache(),
  })
  const exports = run(script)
  // node:vm's code can import() only behind a flag (and, with a cache, not at all): ES task
  // modules are imported from here, by Node's own loader.
  ;(exports['setDynamicImport'] as (load: (url: string) => Promise<unknown>) => void)((url) => import(url))
  // Leaves this thread's code cache with the addon for the threads that start after it: the
  // main thread's first PortPool calls it once its first worker is on its way, and the first
  // pool worker that has run a task calls it when it goes idle (src/pool/shared/code-cache.ts).
  ;(exports['setCodeCacheSharer'] as (share: (addon: CodeCacheStore, fromWorker: boolean) => void) => void)(
    (addon, fromWorker) => {
      addon.setCodeCache(script.createCachedData(), fromWorker)
    },
  )
  const rejected = script.cachedDataRejected
  const compiledWith = isMainThread
    ? 'no cache (main thread)'
    : store === undefined
      ? 'no cache (the addon did not load)'
      : rejected === false
        ? 'code cache'
        : rejected
          ? 'code cache rejected'
          : 'no cache yet'
  return { exports, compiledWith }
}

const loaded = load()
Object.defineProperty(loaded.exports, Symbol.for('@iocp/core.compiledWith'), { value: loaded.compiledWith })

export = loaded.exports
