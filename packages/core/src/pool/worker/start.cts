/**
 * What each worker of a PortPool runs (dist/worker-start.cjs, loaded by the file Piscina loads,
 * entry.cts, with a V8 code cache). A start (Piscina's task, see pool/shared/protocol.ts) first
 * runs a boot task if the main thread offered it one that no other worker took (boot-task.ts,
 * bundled into this file), then starts the worker's loop, pool/worker/loop.ts, taken from the
 * bundle that this file is built beside (dist/core.cjs, through dist/loader.cjs, which compiles
 * it with the process's code cache; see scripts/bundle.mjs and src/loader.cts).
 *
 * Why CommonJS, and why the bundle:
 * - Piscina loads its task module with require() first. For an ES module, Node 20.19+ then
 *   takes the require(esm) path, and under load that path can abort the whole process
 *   ("v8::Module::IsGraphAsync must be used on an instantiated module", seen in our suites).
 *   A CommonJS file is required the classic way on every Node version.
 * - One CommonJS file is the cheapest thing a new thread can load: no ES module loader, no
 *   graph of thirty files to resolve and link. User code in the worker that
 *   imports '@iocp/core' gets the same bundle (the package's ES entry re-exports it), so there
 *   is one copy of the package's per-thread state either way. (What this file carries for the
 *   boot task holds no per-thread state: the codec, the task context, the module loading.)
 */
import { receiveMessageOnPort } from 'node:worker_threads'
import type { CompletionPort } from '../../port/completion-port.js'
import type { PortHandle } from '../../port/handle.js'
import { HANDLER_PREFIX, isBootTask, type BootAnswer, type BootTask, type LoopInit, type StartResult } from '../shared/protocol.js'
import { BOOT_CLOSED, BOOT_HANDING, BOOT_OPEN } from '../shared/memory.js'
import { runBootTask } from './boot-task.js'
import { loadTaskModule, setDynamicImport, type TaskModule } from './task-module.js'

/**
 * entry.cts's import(), when it compiled this file through node:vm (whose code cannot run
 * import() itself); undefined when this file was required as usual.
 */
declare const __import: ((url: string) => Promise<unknown>) | undefined
if (typeof __import === 'function') setDynamicImport(__import)
import { encodeError } from '../shared/codec.js'
import { noop } from '../../shared.js'

interface Bundle {
  startPoolLoop(init: LoopInit): Promise<StartResult>
  CompletionPort: { fromHandle(handle: PortHandle): CompletionPort }
}

let bundle: Bundle | undefined
const load = (): Bundle => (bundle ??= require('./loader.cjs') as Bundle)

/** Task modules loading or loaded, by file (one per worker, in practice). */
const taskModules = new Map<string, Promise<TaskModule>>()

/** The task module at `filename`, loaded once per worker (its failure too: no second load). */
function taskModule(filename: string): Promise<TaskModule> {
  let loading = taskModules.get(filename)
  if (loading === undefined) {
    loading = loadTaskModule(filename)
    loading.catch(noop) // its failure is the start's answer, when the start comes
    taskModules.set(filename, loading)
  }
  return loading
}

/**
 * Closes the loop's boot gate (pool/shared/memory.ts) and takes the offers made through it, in
 * the order they were made: after the close, every one is on the side channel (and nothing else
 * is sent on it before the loop asks).
 */
function takeOffers(init: LoopInit): BootTask[] {
  const gates = init.memory.boot
  while (Atomics.compareExchange(gates, init.loop, BOOT_OPEN, BOOT_CLOSED) === BOOT_HANDING) {
    Atomics.wait(gates, init.loop, BOOT_HANDING)
  }
  const offers: BootTask[] = []
  for (let got = receiveMessageOnPort(init.side); got !== undefined; got = receiveMessageOnPort(init.side)) {
    if (isBootTask(got.message)) offers.push(got.message)
  }
  return offers
}

/**
 * A start (Piscina's task): the oldest offer no other worker has claimed, as this worker's boot
 * task, then the worker's loop. The bundle is loaded here, not before: a boot task runs first
 * (boot-task.ts), and only then does the bundle load (loading it with this file would put it
 * ahead of the boot task).
 */
async function start(init: LoopInit): Promise<StartResult> {
  const offers = takeOffers(init)
  const back = (offer: BootTask): void => init.side.postMessage({ back: offer.boot, claim: offer.claim } satisfies BootAnswer)
  let module: TaskModule
  try {
    module = await taskModule(init.filename)
  } catch (error) {
    // The start fails as the loop's start fails then (no second load), and its offers go back.
    offers.forEach(back)
    return { error: encodeError(error) }
  }
  let boot: BootTask | undefined
  for (const offer of offers) {
    if (boot === undefined && Atomics.compareExchange(init.memory.bootClaims, offer.claim, 0, init.loop + 1) === 0) boot = offer
    else back(offer)
  }
  if (boot !== undefined) {
    try {
      await runBootTask(init, boot, module, () => load().CompletionPort.fromHandle(init.tasks))
    } catch (error) {
      // A bug of the boot path, not the task's error (that is its outcome): it ends the worker,
      // as the same bug in the loop would, and the worker's exit fails the task.
      setImmediate(() => {
        throw error
      })
      return new Promise<never>(noop)
    }
  }
  return load().startPoolLoop(init)
}

// What Piscina's worker requires: an ES-module-shaped namespace (`__esModule`, which Piscina's
// require() helper passes through as is) whose every handler name is `start`; a name that
// carries the task module's file (HANDLER_PREFIX) starts loading it.
module.exports = new Proxy(
  {},
  {
    get(_target, key) {
      if (key === '__esModule') return true
      if (typeof key !== 'string' || key === 'then') return undefined
      if (key.startsWith(HANDLER_PREFIX)) void taskModule(key.slice(HANDLER_PREFIX.length))
      return start
    },
  },
)
