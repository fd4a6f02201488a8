/**
 * The contract between a pool's main thread (port-pool.ts) and its workers (pool/worker/loop.ts), apart
 * from the packets themselves (pool/shared/codec.ts) and the shared memory (pool/shared/memory.ts):
 *
 * 1. **Start.** The main thread runs one Piscina task per loop, `start(init)`, with a
 *    {@link LoopInit}. Its own load balancer hands each start to a worker that has never had
 *    one, so a worker runs exactly one loop. `start` records the thread in shared memory,
 *    loads the task module and opens the ports, and answers ({@link StartResult}): the loop
 *    then runs in the background of that worker, blocked in the task port's `get()` whenever
 *    it has nothing to do. Piscina therefore sees idle workers: it neither refs nor times them
 *    out, so an idle pool never keeps the process alive. A start that cannot load the task
 *    module answers with the error; the main thread then ends that worker (pool/main/workers.ts).
 * 2. **Side channel.** A payload that must be *transferred* (a `MessagePort` in the
 *    `transferList`) cannot travel as bytes. Its packet carries no payload; the worker asks for
 *    it by posting the task id on the loop's `side` port, and the main thread answers with
 *    `{ id, payload }` (transferred) or `{ id, error }`.
 * 3. **Boot task.** While a pool is booting (no loop has run yet), the main thread offers its
 *    first tasks to the loops that have not started, each as a {@link BootTask} posted on
 *    every such loop's side channel through the loop's boot gate (pool/shared/memory.ts): only
 *    while the gate is open, that is, before the start runs; the start closes it and finds its
 *    offers there. It takes the oldest one no other worker has claimed, runs it before it loads
 *    @iocp/core's bundle and opens the ports (pool/worker/boot-task.ts), and answers on the
 *    side channel ({@link BootAnswer}): the result packet's words for the task it ran, `back`
 *    for each offer it did not run (claimed by another worker, or, if the task module did not
 *    load, all of them; then the start answers that error as above). An offer that every loop
 *    sent back unclaimed goes to the port. Otherwise the start goes on as above.
 * 4. **Reports.** What is not the answer to a task reaches the main thread as a message on the
 *    worker's `parentPort` (Piscina turns it into a `'message'` event), marked with
 *    {@link REPORT}: a raw packet's handler threw. Other
 *    messages a task posts on `parentPort` are the user's, re-emitted by the pool as
 *    `'message'`, as Piscina does.
 */
import type { MessagePort } from 'node:worker_threads'
import type { PortHandle } from '../../port/handle.js'
import type { PoolMemory } from './memory.js'

/**
 * How the pool names the workers' handler to Piscina (its `name` option): this prefix, then the
 * task module's file. Piscina's worker looks the handler up, `require(entry)[name]`, as it loads
 * the entry, before it tells the pool it is ready; pool/worker/start.cts answers every name with
 * its start, and one with this prefix also starts loading the task module. So the module loads
 * where Piscina's own worker loads a task module, not after the start has come.
 */
export const HANDLER_PREFIX = '@iocp/core start, task module '

/** What `start()` receives: everything one loop needs. */
export interface LoopInit {
  /** This loop's index in the loop cells of shared memory. */
  readonly loop: number
  /** The pool's task port (tasks and raw packets; drained by the workers). */
  readonly tasks: PortHandle
  /** The pool's results port (drained by the main thread). */
  readonly results: PortHandle
  readonly memory: PoolMemory
  /** The task module's absolute path. */
  readonly filename: string
  /** The task name of name index 0. */
  readonly defaultName: string
  readonly minThreads: number
  /** ms; `Infinity` never leaves. */
  readonly idleTimeout: number
  readonly recordTiming: boolean
  /** The main thread's `performance.timeOrigin`, so times are written on its clock. */
  readonly timeOrigin: number
  /** The loop's end of its side channel. */
  readonly side: MessagePort
}

/**
 * A task offered to a start (main -> worker, on the side channel; see "Boot task" above): never
 * one whose payload travels by postMessage (encoding SIDE).
 */
export interface BootTask {
  /** The task's id. */
  readonly boot: number
  /** Its offer: the index of its claim in `memory.bootClaims` (the same in every loop it is offered to). */
  readonly claim: number
  /** Its packet's key, bytes and payload, as the task port would have carried them. */
  readonly key: number
  readonly bytes: number
  readonly data: Uint8Array | undefined
}

/** The answer to a {@link BootTask} (worker -> main, on the side channel): its result, or `back` (not run here). */
export type BootAnswer =
  | { readonly boot: number; readonly claim: number; readonly key: number; readonly bytes: number; readonly data: Uint8Array | undefined }
  | { readonly back: number; readonly claim: number }

/** Whether a side-channel message to a worker is a {@link BootTask} (an offer). */
export function isBootTask(message: unknown): message is BootTask {
  return message !== null && typeof message === 'object' && 'claim' in message
}

/** Whether a side-channel message from a worker is a {@link BootAnswer}. */
export function isBootAnswer(message: unknown): message is BootAnswer {
  return message !== null && typeof message === 'object' && ('boot' in message || 'back' in message)
}

/**
 * What `start()` answers: the thread's id once its loop runs (or once it found the pool
 * closed), or, when the task module failed to load in that worker, the error (pool/shared/codec.ts).
 */
export type StartResult = number | { readonly error: Uint8Array }

/** The property that marks a pool's own report among the messages of a worker. */
export const REPORT = '__iocpPortPool'

/** A report from a worker to the main thread (posted on `parentPort`). */
export type WorkerReport = {
  readonly [REPORT]: 'packetError'
  readonly key: number | bigint
  readonly bytes: number
  readonly overlapped: number | bigint
  readonly error: Uint8Array
}

/** A side-channel answer (main -> worker). */
export type SideReply =
  | { readonly id: number; readonly payload: unknown }
  | { readonly id: number; readonly error: Uint8Array }

/**
 * A result that `v8.serialize` refuses (a SharedArrayBuffer...), sent by postMessage over the
 * loop's side channel (worker -> main) just before its result packet (encoding SIDE).
 */
export type SideResult = { readonly id: number; readonly result: unknown }

/** Whether `message` is a pool report rather than a user's message. */
export function isReport(message: unknown): message is WorkerReport {
  return message !== null && typeof message === 'object' && REPORT in message
}
