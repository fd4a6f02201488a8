/**
 * Submission: what `run()` and `post()` do on the main thread. A task's options are checked,
 * its payload encoded into one packet (pool/shared/codec.ts; or, when it holds transferables or
 * shared memory, kept for the worker's side channel), it gets a slot (task-table.ts) and its
 * packet goes to the task port. Also its cancellation: abort while queued or running, the grace
 * period after which a task that ignores its abort loses its worker, and close({ force })'s
 * taking back of what has not started.
 */
import type { MessagePort } from 'node:worker_threads'
import { performance } from 'node:perf_hooks'
import { Errors } from '../../errors.js'
import { MAX_TIMEOUT_MS } from '../../shared.js'
import { validateSignal } from '../../validate.js'
import { ENC_SIDE, MAX_NAMES, TASK_BASE, encodeError, encodeValue, encoded, taskKey } from '../shared/codec.js'
import { PoolErrors } from '../shared/errors.js'
import { PISCINA_TRANSFERABLE, PISCINA_VALUE } from '../shared/piscina-symbols.js'
import { addName, loopRunning } from '../shared/memory.js'
import type { Results } from './results.js'
import type { PoolState } from './state.js'
import { Task } from './task-table.js'

/** Options of {@link PortPool.run}. `Name` is the task's name, checked in a typed pool. */
export interface RunOptions<Name extends string = string> {
  /**
   * The exported function to run: a named export of the task module (or a property of its
   * CommonJS `module.exports`).
   * @default the pool's `name` option, `'default'` unless set
   */
  name?: Name | null
  /**
   * Cancels the task. Queued: it never runs. Running: its promise rejects at once with
   * {@link AbortError}, and the task sees the abort through `ctx.signal` / `ctx.aborted`; if it
   * has not returned `abortTimeout` ms later ({@link PortPoolOptions.abortTimeout}), its worker
   * is terminated and replaced.
   */
  signal?: AbortSignal | null
  /**
   * Piscina's transfer list. An `ArrayBuffer`, a `MessagePort` (or any other transferable) in
   * it is transferred, zero-copy: the payload then goes to the worker that takes the task over
   * that worker's private channel, as a `postMessage` would send it (the sender's buffer is
   * detached). A typed array or `Buffer` (which `postMessage` cannot transfer) is copied with
   * the payload instead.
   */
  transferList?: ReadonlyArray<unknown>
}

/** The keys {@link PortPool.run} knows (filename is refused with its own message). */
const RUN_OPTIONS = new Set(['name', 'signal', 'transferList', 'filename'])

/** The transfer list without its views (postMessage cannot transfer them; they are copied). */
function transferables(list: ReadonlyArray<unknown>): unknown[] {
  return list.filter((item) => !ArrayBuffer.isView(item))
}

export class Submission {
  readonly #state: PoolState
  readonly #results: Results
  readonly #out = encoded()
  readonly #names = new Map<string, number>()
  /** Timers of aborted tasks that still run: when one fires, their worker is terminated. */
  readonly #abortTimers = new Set<ReturnType<typeof setTimeout>>()

  constructor(state: PoolState, results: Results) {
    this.#state = state
    this.#results = results
    addName(state.memory, state.options.name)
    this.#names.set(state.options.name, 0)
  }

  /** `run()`: see {@link PortPool.run}. Never throws. */
  run(payload: unknown, options: RunOptions | undefined): Promise<unknown> {
    const state = this.#state
    let name = 0
    let signal: AbortSignal | undefined
    let transferList: ReadonlyArray<unknown> | undefined
    if (options !== undefined) {
      try {
        ;({ name, signal, transferList } = this.#runOptions(options))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    if (state.closing) return Promise.reject(PoolErrors.closed())
    if (state.failed !== undefined) return Promise.reject(state.failed)
    try {
      // The signal's getters are the caller's code: a throw is a rejection, never a throw.
      if (signal?.aborted === true) return Promise.reject(PoolErrors.aborted(signal.reason))
    } catch (error) {
      return Promise.reject(error)
    }
    const maxQueue = state.options.maxQueue
    if (maxQueue !== Infinity && state.queued() >= maxQueue) return Promise.reject(PoolErrors.queueFull(maxQueue))

    const task = new Task()
    try {
      this.#encode(task, payload, name, transferList)
    } catch (error) {
      return Promise.reject(error)
    }
    const promise = new Promise<unknown>((resolve, reject) => {
      task.resolve = resolve
      task.reject = reject
    })
    if (signal !== undefined) {
      task.signal = signal
      const onAbort = (): void => this.#abort(task)
      task.onAbort = onAbort
      try {
        signal.addEventListener('abort', onAbort, { once: true })
      } catch (error) {
        return Promise.reject(error) // the task is not admitted yet: nothing to undo
      }
    }
    if (state.options.recordTiming) task.createdAt = performance.now()

    if (state.table.admit(task)) state.post(task)
    this.#results.ensureDraining()
    if (state.elastic) state.scaleUp()
    if (!state.needsDrain && state.table.inFlight >= state.capacity) {
      state.needsDrain = true
      state.events.emit('needsDrain')
    }
    return promise
  }

  /** `post()`: see {@link PortPool.post}. */
  post(key: number | bigint, bytes?: number, overlapped?: number | bigint, data?: Uint8Array): void {
    const state = this.#state
    if (state.closing) throw PoolErrors.closed()
    if (state.failed !== undefined) throw state.failed
    if (typeof key === 'number' && key >= TASK_BASE) throw PoolErrors.reservedKey(key)
    state.outbox.flush(true) // after the tasks submitted before it (FIFO), even while booting
    state.tasks.post(key, bytes, overlapped, data)
    if (state.elastic) state.scaleUp()
  }

  /** close({ force: true }): the tasks not yet started reject now, as Piscina's. */
  abortQueued(): void {
    const error = PoolErrors.closedForce()
    for (const task of this.#state.table.abortQueued()) {
      task.settle()
      task.reject(error)
    }
    this.#state.afterChange()
  }

  /** The pool is ending: no worker is terminated for an aborted task any more. */
  stopAbortTimers(): void {
    for (const timer of this.#abortTimers) clearTimeout(timer)
    this.#abortTimers.clear()
  }

  /** A loop asks for the payload of task `id` (it holds transferables): send it, transferred. */
  sendSide(channel: MessagePort, id: number): void {
    const task = this.#state.table.peek(id)
    const side = task?.side
    if (task === undefined || side === undefined) {
      channel.postMessage({ id, error: encodeError(PoolErrors.destroyed()) })
      return
    }
    task.side = undefined
    try {
      channel.postMessage({ id, payload: side.payload }, side.transferList as never)
    } catch (error) {
      channel.postMessage({ id, error: encodeError(error) })
    }
  }

  #runOptions(options: RunOptions): {
    name: number
    signal: AbortSignal | undefined
    transferList: ReadonlyArray<unknown> | undefined
  } {
    if (options === null || typeof options !== 'object') {
      throw Errors.invalidType('options', 'an object or undefined', options)
    }
    for (const key of Object.keys(options)) {
      if (!RUN_OPTIONS.has(key)) throw PoolErrors.unknownRunOption(key)
    }
    if ((options as { filename?: unknown }).filename != null) throw PoolErrors.runFilename()
    let name = 0
    if (options.name != null) {
      if (typeof options.name !== 'string' || options.name === '') {
        throw Errors.invalidType('options.name', 'a non-empty string', options.name)
      }
      name = this.#nameIndex(options.name)
    }
    const signal = options.signal ?? undefined
    validateSignal('options.signal', signal)
    const transferList = options.transferList
    if (transferList !== undefined && !Array.isArray(transferList)) {
      throw Errors.invalidType('options.transferList', 'an array', transferList)
    }
    return { name, signal, transferList }
  }

  #nameIndex(name: string): number {
    let index = this.#names.get(name)
    if (index === undefined) {
      index = addName(this.#state.memory, name)
      if (index < 0) throw PoolErrors.tooManyNames(MAX_NAMES)
      this.#names.set(name, index)
    }
    return index
  }

  #encode(task: Task, payload: unknown, name: number, transferList: ReadonlyArray<unknown> | undefined): void {
    let value = payload
    let transfers = transferList
    if (value !== null && typeof value === 'object' && PISCINA_VALUE in value && PISCINA_TRANSFERABLE in value) {
      // Piscina.move(x): the wrapped value, with its transferable.
      const moved = value as Record<symbol, unknown>
      transfers = [...(transfers ?? []), moved[PISCINA_TRANSFERABLE]]
      value = moved[PISCINA_VALUE]
    }
    const moved = transfers === undefined ? [] : transferables(transfers)
    if (moved.length > 0) {
      task.side = { payload: value, transferList: moved }
      task.key = taskKey(ENC_SIDE, name, 0)
      return
    }
    const out = this.#out
    let enc: number
    try {
      enc = encodeValue(value, out)
    } catch {
      // A packet cannot carry it (shared memory, or something structured clone refuses): it
      // goes by postMessage, which shares shared memory; #viaSide refuses what neither can carry.
      this.#viaSide(task, name, value)
      return
    }
    task.key = taskKey(enc, name, out.hi)
    task.bytes = out.lo
    task.data = out.data
  }

  /** The payload travels over the side channel of the worker that takes the task (postMessage). */
  #viaSide(task: Task, name: number, payload: unknown): void {
    try {
      // The check postMessage will make, now, so that an unclonable payload rejects here.
      structuredClone(payload)
    } catch (error) {
      throw PoolErrors.notClonable('payload', error)
    }
    task.side = { payload, transferList: [] }
    task.key = taskKey(ENC_SIDE, name, 0)
  }

  #abort(task: Task): void {
    if (task.settled) return
    task.settle()
    const started = this.#state.table.abort(task)
    task.reject(PoolErrors.aborted(task.signal?.reason))
    if (task.dropped) this.#state.afterChange()
    if (started) this.#armAbortTimeout(task)
  }

  /**
   * An aborted task is still running: give it `abortTimeout` ms to return, then terminate its
   * worker. The worker's exit recovers what it held (worker-events.ts) and a new worker
   * replaces it, so neither its slot nor its place under the concurrency limit stays taken.
   */
  #armAbortTimeout(task: Task): void {
    const state = this.#state
    const timeout = state.options.abortTimeout
    if (timeout === Infinity) return
    const id = task.id
    const timer = setTimeout(() => {
      this.#abortTimers.delete(timer)
      // Its last packet is back (it returned in time), or the pool is ending anyway.
      if (state.torn || state.table.peek(id) !== task) return
      // No loop runs it: its answer is on its way (a loop frees the cell after it posts).
      const loop = loopRunning(state.memory, id)
      if (loop >= 0) state.workers.terminate(loop)
    }, Math.min(timeout, MAX_TIMEOUT_MS))
    this.#abortTimers.add(timer)
  }
}
