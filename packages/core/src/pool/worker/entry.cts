/**
 * The file Piscina loads in each worker of a PortPool (its `filename`): it runs
 * dist/worker-start.cjs (pool/worker/start.cts) and hands over its exports.
 *
 * Why this file: a new worker compiles what it runs before its first task, and compiling
 * worker-start.cjs took a new thread about 1.3 ms of the pool's first result, on every worker.
 * So it is compiled with the V8 code cache that the build leaves beside it
 * (dist/worker-start-v8-<V8 version>.cache, scripts/bundle.mjs). V8 checks that a cache fits
 * (the same source, the same V8 and flags) and compiles from scratch when it does not; a Node
 * with another V8 than the one that built the package finds no cache of its own, and compiles
 * as before. With --enable-source-maps the file is required as usual (Node maps the frames
 * only of what its own loaders compiled).
 *
 * Code that node:vm compiled can run import() only with a loader given to its Script, and that
 * (`vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER`) undid most of what the cache saves, here. So
 * this file hands over its own import(), for ES task modules, as the wrapper's last argument
 * (start.cts takes it), as src/loader.cts does for the bundle.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Script } from 'node:vm'

const file = join(__dirname, 'worker-start.cjs')

/** How the build wraps the file for its cache, and this file for its compile: they must match. */
const WRAPPER = ['(function (exports, require, module, __filename, __dirname, __import) {', '\n})'] as const

/** How this thread compiled worker-start.cjs, for tests: `'cache'`, `'no cache'` (none, or refused), `'require'`. */
const COMPILED_WITH = Symbol.for('@iocp/core worker-start compiled with')

function load(): unknown {
  if (process.sourceMapsEnabled) {
    ;(globalThis as Record<symbol, unknown>)[COMPILED_WITH] = 'require'
    return require(file)
  }
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(join(__dirname, `worker-start-v8-${process.versions.v8}.cache`))
  } catch {
    // none for this V8: compiled without
  }
  // The file is ASCII (scripts/bundle.mjs makes it so), so latin1 reads it as UTF-8 would, faster.
  const script = new Script(`${WRAPPER[0]}${readFileSync(file, 'latin1')}${WRAPPER[1]}`, { filename: file, cachedData })
  ;(globalThis as Record<symbol, unknown>)[COMPILED_WITH] = cachedData !== undefined && !script.cachedDataRejected ? 'cache' : 'no cache'
  const started: { exports: unknown } = { exports: {} }
  const dynamicImport = (url: string): Promise<unknown> => import(url)
  ;(script.runInThisContext() as (...args: unknown[]) => void)(started.exports, require, started, file, __dirname, dynamicImport)
  return started.exports
}

module.exports = load()
