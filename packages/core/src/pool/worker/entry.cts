/**
 * The file Piscina loads in each worker of a PortPool (its `filename`): the start of the
 * worker's loop, pool/worker/loop.ts, taken from the bundle that this file is built beside
 * (dist/core.cjs, through dist/loader.cjs, which compiles it with the process's code cache;
 * see scripts/bundle.mjs and src/loader.cts).
 *
 * Why CommonJS, and why the bundle:
 * - Piscina loads its task module with require() first. For an ES module, Node 20.19+ then
 *   takes the require(esm) path, and under load that path can abort the whole process
 *   ("v8::Module::IsGraphAsync must be used on an instantiated module", seen in our suites).
 *   A CommonJS file is required the classic way on every Node version.
 * - One CommonJS file is the cheapest thing a new thread can load: no ES module loader, no
 *   graph of thirty files to resolve and link. User code in the worker that
 *   imports '@iocp/core' gets the same bundle (the package's ES entry re-exports it), so there
 *   is one copy of the package's per-thread state either way.
 */
import type { LoopInit, StartResult } from '../shared/protocol.js'

interface Bundle {
  startPoolLoop(init: LoopInit): Promise<StartResult>
}

let bundle: Bundle | undefined
const load = (): Bundle => (bundle ??= require('./loader.cjs') as Bundle)

// Piscina posts 'ready' as soon as this file is loaded, and the loop's start comes back from the
// main thread a millisecond or so later: the bundle loads in that gap, not before it. If loading
// throws, the start loads it again and fails with the error, as a failed start.
setImmediate(() => {
  try {
    load()
  } catch {
    // (see above)
  }
})

module.exports = (init: LoopInit): Promise<StartResult> => load().startPoolLoop(init)
