/**
 * The file Piscina loads in each worker: a CommonJS shim over the real loop in pool/worker/loop.js.
 *
 * Why: Piscina loads its task module with require() first. For an ES module, Node 20.19+ then
 * takes the require(esm) path, and under load that path can abort the whole process
 * ("v8::Module::IsGraphAsync must be used on an instantiated module", seen in our suites). A
 * CommonJS entry is required the classic way on every Node version and import()s the ES module.
 */
import type { LoopInit, StartResult } from '../shared/protocol.js'

module.exports = async function start(init: LoopInit): Promise<StartResult> {
  const loop = (await import('./loop.js')) as { default: (init: LoopInit) => Promise<StartResult> }
  return loop.default(init)
}
