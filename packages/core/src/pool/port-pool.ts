/**
 * `PortPool`: Windows' thread-pool I/O (`CreateThreadpoolIo`) on worker threads. Piscina starts,
 * limits, replaces and ends the workers (pool/main/workers.ts); each worker loops on the pool's
 * completion port (pool/worker/loop.ts); the port's concurrency rule decides how many of them run at
 * once.
 *
 * The data path of one task: `run()` encodes the payload into one packet (pool/shared/codec.ts), gives
 * the task a slot (pool/main/task-table.ts) and posts the packet to the task port → the most recent idle
 * worker takes it (or the worker that just finished, without a context switch) and runs the
 * task → it posts the outcome to the results port → this thread drains that port
 * asynchronously, in batches (`getAsync()`, then everything already there with
 * `getManyInto(…, 0)`), and settles the promises. No message per task and no queue of our own:
 * the port is the queue.
 */
import { EventEmitter } from 'node:events'
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks'
import type { MessagePort, Worker } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { PacketBatch } from '../port/batch.js'
import type { CompletionPort } from '../port/completion-port.js'
import { createPoolPorts } from './main/ports.js'
import { Errors, PortClosedError } from '../errors.js'
import type { PortHandle } from '../port/handle.js'
import { makePacket, type Packet } from '../port/packet.js'
import { PoolErrors } from './shared/errors.js'
import { addName, createPoolMemory, loopRunning, type PoolMemory } from './shared/memory.js'
import { resolvePoolOptions, type PortPoolOptions, type ResolvedPoolOptions } from './main/options.js'
import { REPORT, isReport, type WorkerReport } from './shared/protocol.js'
import { recordMs, summarize, type PoolHistogram, type PoolStats } from './main/stats.js'
import { PoolWorkers } from './main/workers.js'
import {
  ENC_ERROR,
  ENC_SIDE,
  ENC_SKIPPED,
  MAX_NAMES,
  TASK_BASE,
  decodeError,
  decodeValue,
  encodeError,
  encodeValue,
  encoded,
  hiOf,
  isTaskKey,
  tagOf,
  taskKey,
} from './shared/codec.js'
import { Task, TaskTable, slotOf } from './main/task-table.js'
import { MAX_TIMEOUT_MS, noop } from '../shared.js'
import { validateSignal } from '../validate.js'
import type { TaskName, TaskPayload, TaskResult } from './shared/typed.js'

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

/** Options of {@link PortPool.close}. */
export interface CloseOptions {
  /**
   * Rejects the tasks that have not started at once (with {@link AbortError}, cause
   * `'pool is closed'`, as Piscina), instead of running them; running tasks still finish.
   * @default false
   */
  force?: boolean
}

/** The keys {@link PortPool.run} knows (filename is refused with its own message). */
const RUN_OPTIONS = new Set(['name', 'signal', 'transferList', 'filename'])

/** Packets taken per `getManyInto` when the results port is drained. */
const BATCH = 256

/** What `new Worker` throws for a bad option, as an error that names the option. */
function workerOptionError(error: unknown): unknown {
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown }
  if (name === 'DataCloneError') return PoolErrors.workerOption('workerData', error)
  if (code === 'ERR_WORKER_INVALID_EXEC_ARGV') return PoolErrors.workerOption('execArgv', error)
  return error
}

/** The transfer list without its views (postMessage cannot transfer them; they are copied). */
function transferables(list: ReadonlyArray<unknown>): unknown[] {
  return list.filter((item) => !ArrayBuffer.isView(item))
}

/**
 * A pool of worker threads that drain one completion port: Piscina's API (`run`, `close`,
 * `destroy`, `maxQueue`, `needsDrain`, histograms...), with dispatch by packets instead of
 * per-task messages, a concurrency limit that holds across the whole pool, cooperative
 * cancellation of running tasks, raw packets for the workers ({@link PortPool.post}) and exact
 * recovery of the tasks of a worker that dies.
 *
 * Events: `'drain'` and `'needsDrain'` (back-pressure, see {@link PortPool.needsDrain}),
 * `'message'` (a worker's `parentPort.postMessage`), `'packetError'` `(error, packet)` (a raw
 * packet's handler threw, or the worker holding it died; without a listener, a process warning),
 * `'error'` (a worker died while it held nothing, or failed to start and is being replaced;
 * emitted only if someone listens), `'close'`.
 *
 * A worker that fails to start is replaced, up to 3 failed starts in a row; then the pool fails:
 * every pending and later task rejects with the error ({@link WorkerDiedError}, or
 * {@link TaskModuleError} if the task module failed to load), `post()` throws it, and
 * `close()` / `destroy()` still end every worker.
 *
 * Typed: `new PortPool<typeof import('./task.js')>(…)` checks each `run()`'s payload against the
 * named export's first parameter and types its result (the export's awaited return value);
 * without a type argument, payloads and results are `any`, as with Piscina.
 *
 * @typeParam Tasks - the type of the task module (`typeof import('./task.js')`); `any` if untyped.
 *
 * @example
 * ```ts
 * const pool = new PortPool<typeof import('./task.js')>({ filename: new URL('./task.js', import.meta.url), concurrency: 4 })
 * const sum = await pool.run({ a: 1, b: 2 })              // typed by task.js's default export
 * const text = await pool.run('x', { name: 'shout' })     // typed by its `shout` export
 * await pool.close()
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class PortPool<Tasks = any> extends EventEmitter {
  readonly #options: ResolvedPoolOptions
  readonly #tasks: CompletionPort
  readonly #results: CompletionPort
  readonly #memory: PoolMemory
  readonly #table: TaskTable
  readonly #workers: PoolWorkers
  readonly #batch = new PacketBatch(BATCH)
  readonly #out = encoded()
  readonly #timing: boolean
  /** In-flight tasks at which needsDrain turns true: concurrency (+ maxQueue if finite). */
  readonly #capacity: number
  readonly #elastic: boolean
  readonly #names = new Map<string, number>()

  #draining = false
  #drainAbort: AbortController | undefined
  #needsDrain = false
  #idleWaiters: Array<() => void> = []

  /** Timers of aborted tasks that still run: when one fires, their worker is terminated. */
  readonly #abortTimers = new Set<ReturnType<typeof setTimeout>>()

  /** Results sent by postMessage whose packet has not been handled yet, by task id. */
  readonly #sideResults = new Map<number, unknown>()
  /** Tasks whose result packet came before the postMessage that carries their result. */
  readonly #awaitingSide = new Map<number, Task>()
  #sideKeepAlive: ReturnType<typeof setInterval> | undefined

  #closing = false
  /** The ports are closed and the workers are being ended. */
  #torn = false
  #failed: Error | undefined
  #closePromise: Promise<void> | undefined
  #destroyPromise: Promise<void> | undefined
  #teardownPromise: Promise<void> | undefined

  #completed = 0
  #runTotal = 0
  readonly #start = performance.now()
  readonly #runTime: RecordableHistogram = createHistogram()
  readonly #waitTime: RecordableHistogram = createHistogram()

  /**
   * Starts the pool: `minThreads` workers, each loading the task module and waiting on the
   * pool's port.
   *
   * @param options - see {@link PortPoolOptions}.
   * @throws {TypeError} an option has the wrong type, is unknown, or is a Piscina option that
   *   PortPool does not support; the message names it.
   * @throws {RangeError} an option is out of range, or contradicts another (both named).
   */
  constructor(options: PortPoolOptions) {
    super()
    const o = (this.#options = resolvePoolOptions(options))
    this.#timing = o.recordTiming
    this.#capacity = o.concurrency + (o.maxQueue === Infinity ? 0 : o.maxQueue)
    this.#elastic = o.minThreads < o.maxThreads
    const maxLoops = 2 * o.maxThreads + 1
    this.#memory = createPoolMemory(maxLoops, o.concurrentTasksPerWorker, o.recordTiming)
    this.#table = new TaskTable(this.#memory.state)
    addName(this.#memory, o.name)
    this.#names.set(o.name, 0)

    ;({ tasks: this.#tasks, results: this.#results } = createPoolPorts(o.concurrency))
    try {
      this.#workers = new PoolWorkers(
        o,
        this.#memory,
        maxLoops,
        { tasks: () => this.#tasks.handle, results: () => this.#results.handle },
        {
          message: (message) => this.#onMessage(message),
          exit: (threadId, exitCode, cause, running, died) => this.#onExit(threadId, exitCode, cause, running, died),
          startFailed: (error, final) => this.#onStartFailed(error, final),
          side: (channel, id) => this.#sendSide(channel, id),
          sideResult: (id, result) => this.#onSideResult(id, result),
        },
      )
    } catch (error) {
      // `new Worker` refused an option (no worker was started): say which, and leave nothing open.
      this.#tasks.close()
      this.#results.close()
      throw workerOptionError(error)
    }
    this.#workers.ensure()
  }

  // --- public API ----------------------------------------------------------------------------

  /**
   * Runs a task: the task module's default export (or the export `options.name`) is called
   * in a worker as `fn(payload, ctx)` ({@link TaskContext}), and the promise settles with what
   * it returns (or the promise it returns settles with), or rejects with what it throws.
   *
   * The payload and the result are structured-cloned (numbers, strings and `Uint8Array`s take
   * faster paths); an error keeps its class (for built-in ones), name, message, stack, own
   * properties and cause.
   *
   * Never throws: every error is a rejection.
   *
   * @param payload - the task's input.
   * @param options - see {@link RunOptions}.
   * @throws {PoolClosedError} (as a rejection) the pool is closing or closed.
   * @throws {QueueFullError} (as a rejection) `maxQueue` tasks are already waiting.
   * @throws {AbortError} (as a rejection) `options.signal` aborted, before or while it ran.
   * @throws {WorkerDiedError} (as a rejection) the worker running it died, or no worker could start.
   * @throws {TaskModuleError} (as a rejection) the task module did not load, or has no such export.
   * @throws {TypeError} (as a rejection) `options` is malformed, or the payload cannot be cloned.
   */
  run<Name extends TaskName<Tasks> | 'default' = 'default'>(
    payload: TaskPayload<Tasks, Name>,
    options?: RunOptions<Name>,
  ): Promise<TaskResult<Tasks, Name>> {
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
    if (this.#closing) return Promise.reject(PoolErrors.closed())
    if (this.#failed !== undefined) return Promise.reject(this.#failed)
    if (signal?.aborted === true) return Promise.reject(PoolErrors.aborted(signal.reason))
    const maxQueue = this.#options.maxQueue
    if (maxQueue !== Infinity && this.#queued() >= maxQueue) return Promise.reject(PoolErrors.queueFull(maxQueue))

    const task = new Task()
    try {
      this.#encode(task, payload, name, transferList)
    } catch (error) {
      return Promise.reject(error)
    }
    const promise = new Promise<TaskResult<Tasks, Name>>((resolve, reject) => {
      task.resolve = resolve as (value: unknown) => void
      task.reject = reject
    })
    if (signal !== undefined) {
      task.signal = signal
      const onAbort = (): void => this.#abort(task)
      task.onAbort = onAbort
      signal.addEventListener('abort', onAbort, { once: true })
    }
    if (this.#timing) task.createdAt = performance.now()

    if (this.#table.admit(task)) this.#post(task)
    if (!this.#draining) this.#startDrain()
    if (this.#elastic) this.#scaleUp()
    if (!this.#needsDrain && this.#table.inFlight >= this.#capacity) {
      this.#needsDrain = true
      this.emit('needsDrain')
    }
    return promise
  }

  /**
   * Posts a raw completion packet to the pool's port: a worker takes it and calls the task
   * module's `onPacket(packet, ctx)` export; the completion key selects the behaviour, as with
   * IOCP. Packets and tasks share the port's FIFO queue and its concurrency limit. If the
   * handler throws (or the module has none), the pool emits `'packetError'`.
   *
   * @param key - as for {@link CompletionPort.post}, but a number key must be below 2^52 (the
   *   keys above are the pool's task packets); any bigint works.
   * @throws {PoolClosedError} the pool is closing or closed.
   * @throws {WorkerDiedError | TaskModuleError} the pool failed: no worker could start.
   * @throws {TypeError | RangeError} as {@link CompletionPort.post}; nothing is posted.
   */
  post(key: number | bigint, bytes?: number, overlapped?: number | bigint, data?: Uint8Array): void {
    if (this.#closing) throw PoolErrors.closed()
    if (this.#failed !== undefined) throw this.#failed
    if (typeof key === 'number' && key >= TASK_BASE) throw PoolErrors.reservedKey(key)
    this.#tasks.post(key, bytes, overlapped, data)
    if (this.#elastic) this.#scaleUp()
  }

  /**
   * A handle of the pool's port, for other threads to post raw packets to the pool with
   * `CompletionPort.fromHandle(handle).post(…)` (number keys below 2^52). A new handle per read.
   * @throws {PortClosedError} the pool is closed.
   */
  get handle(): PortHandle {
    return this.#tasks.handle
  }

  /**
   * Closes the pool gracefully: refuses new tasks and packets at once, lets queued and running
   * tasks finish (and queued raw packets be handled; a worker that dies meanwhile is still
   * replaced), then wakes the workers blocked on the port by shutting it down, ends every
   * worker and resolves once every worker thread has exited. After `closeTimeout` ms, what is
   * still pending is ended as {@link PortPool.destroy} does (rejected with
   * {@link PoolClosedError}). Idempotent; never rejects, except for bad `options`.
   *
   * @param options - see {@link CloseOptions}: `force` rejects the tasks not yet started at once.
   * @throws {TypeError} (as a rejection) `options` is not an object, or `force` not a boolean.
   */
  close(options?: CloseOptions): Promise<void> {
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') return Promise.reject(PoolErrors.closeOptions(options))
      const force = options.force
      if (force !== undefined && typeof force !== 'boolean') {
        return Promise.reject(Errors.invalidType('options.force', 'a boolean', force))
      }
      if (force === true && !this.#torn) {
        this.#closing = true
        this.#abortQueued()
      }
    }
    this.#closePromise ??= this.#close()
    return this.#closePromise
  }

  /**
   * Stops the pool now: rejects every queued and running task with {@link PoolClosedError},
   * closes the port (which wakes the blocked workers), ends every worker and resolves once every
   * worker thread has exited. Idempotent; never rejects.
   */
  destroy(): Promise<void> {
    this.#destroyPromise ??= this.#destroy()
    return this.#destroyPromise
  }

  /** `await using pool = new PortPool(…)` closes it gracefully. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /**
   * `using pool = new PortPool(…)` starts a graceful close and does not wait for it (as
   * Piscina's): the pool ends once its tasks are done. Prefer `await using` to wait.
   */
  [Symbol.dispose](): void {
    void this.close()
  }

  /** The fewest worker threads kept running ({@link PortPoolOptions.minThreads}). */
  get minThreads(): number {
    return this.#options.minThreads
  }

  /** The most worker threads ({@link PortPoolOptions.maxThreads}). */
  get maxThreads(): number {
    return this.#options.maxThreads
  }

  /** Worker threads waiting for work in the pool's port (0 once the pool is closed). */
  get idleThreads(): number {
    if (this.#torn) return 0
    try {
      return this.#tasks.stats().waiting
    } catch {
      return 0
    }
  }

  /** A snapshot of the pool's counters and its raw histograms. */
  stats(): PoolStats {
    let queued = 0
    let running = 0
    let waiting = 0
    if (!this.#torn) {
      try {
        const port = this.#tasks.stats()
        queued = port.queued
        running = port.running
        waiting = port.waiting
      } catch {
        // closed meanwhile
      }
    }
    return {
      completed: this.#completed,
      inFlight: this.#table.inFlight,
      queued: queued + this.#table.waiting,
      running,
      waiting,
      threads: this.#workers.live,
      utilization: this.utilization,
      runTime: this.#runTime,
      waitTime: this.#waitTime,
    }
  }

  /** The options in force, every default applied. */
  get options(): ResolvedPoolOptions {
    return this.#options
  }

  /** Tasks that finished (with a result or the task's own error). */
  get completed(): number {
    return this.#completed
  }

  /** Tasks (and raw packets) waiting for a worker. */
  get queueSize(): number {
    return this.#queued()
  }

  /**
   * `true` while the tasks in flight reach the pool's capacity: `concurrency`, plus `maxQueue`
   * when it is finite. It is set by `run()` (with a `'needsDrain'` event) and cleared when
   * tasks finish (with a `'drain'` event), for callers that apply back-pressure.
   */
  get needsDrain(): boolean {
    return this.#needsDrain
  }

  /**
   * The share of the pool's capacity spent running tasks since it started: total task run
   * time / (elapsed time × `concurrency`), between 0 and 1 (0 when timing is off).
   */
  get utilization(): number {
    const capacity = this.duration * this.#options.concurrency
    return capacity > 0 ? this.#runTotal / capacity : 0
  }

  /** Milliseconds since the pool was created. */
  get duration(): number {
    return performance.now() - this.#start
  }

  /** The worker threads (Piscina's `Worker` objects). */
  get threads(): Worker[] {
    return this.#workers.threads
  }

  /** Piscina's `histogram`: run and wait time summaries in milliseconds, and their reset. */
  get histogram(): PoolHistogram {
    const runTime = this.#runTime
    const waitTime = this.#waitTime
    return {
      get runTime() {
        return summarize(runTime)
      },
      get waitTime() {
        return summarize(waitTime)
      },
      resetRunTime: () => runTime.reset(),
      resetWaitTime: () => waitTime.reset(),
    }
  }

  // --- submission ------------------------------------------------------------------------------

  #runOptions(options: RunOptions<string>): {
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
      index = addName(this.#memory, name)
      if (index < 0) throw PoolErrors.tooManyNames(MAX_NAMES)
      this.#names.set(name, index)
    }
    return index
  }

  #encode(task: Task, payload: unknown, name: number, transferList: ReadonlyArray<unknown> | undefined): void {
    let value = payload
    let transfers = transferList
    if (value !== null && typeof value === 'object' && Piscina.valueSymbol in value && Piscina.transferableSymbol in value) {
      // Piscina.move(x): the wrapped value, with its transferable.
      const moved = value as Record<symbol, unknown>
      transfers = [...(transfers ?? []), moved[Piscina.transferableSymbol]]
      value = moved[Piscina.valueSymbol]
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
      // v8.serialize refuses a SharedArrayBuffer (and whatever postMessage alone can carry):
      // the payload goes by postMessage, which shares it; a payload neither can carry is
      // refused in #viaSide, naming postMessage's reason.
      this.#viaSide(task, name, value)
      return
    }
    task.key = taskKey(enc, name, out.hi)
    task.bytes = out.lo
    task.data = out.data
  }

  /** A payload v8.serialize refuses travels over the side channel of the worker that takes the task (postMessage). */
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

  /** Posts the packet of `task`, which holds a slot. */
  #post(task: Task): void {
    try {
      this.#tasks.post(task.key, task.bytes, task.id, task.data)
    } catch (error) {
      this.#table.take(task.id)
      if (!task.settled) {
        task.settle()
        task.reject(error)
      }
      return
    }
    task.data = undefined
  }

  #queued(): number {
    let queued = this.#table.waiting
    if (!this.#torn) {
      try {
        queued += this.#tasks.stats().queued
      } catch {
        // closed meanwhile
      }
    }
    return queued
  }

  /** Starts one more worker if tasks are queued, no worker is idle, and maxThreads allows. */
  #scaleUp(): void {
    if (this.#closing || this.#workers.live >= this.#options.maxThreads) return
    const port = this.#tasks.stats()
    if (port.waiting === 0 && port.queued > 0) this.#workers.start()
  }

  #abort(task: Task): void {
    if (task.settled) return
    task.settle()
    const started = this.#table.abort(task)
    task.reject(PoolErrors.aborted(task.signal?.reason))
    if (task.dropped) this.#afterChange()
    if (started) this.#armAbortTimeout(task)
  }

  /**
   * An aborted task is still running: give it `abortTimeout` ms to return, then terminate its
   * worker. The worker's exit recovers what it held (#onExit) and a new worker replaces it, so
   * neither its slot nor its place under the concurrency limit stays taken.
   */
  #armAbortTimeout(task: Task): void {
    const timeout = this.#options.abortTimeout
    if (timeout === Infinity) return
    const id = task.id
    const timer = setTimeout(() => {
      this.#abortTimers.delete(timer)
      // Its last packet is back (it returned in time), or the pool is ending anyway.
      if (this.#torn || this.#table.peek(id) !== task) return
      // No loop runs it: its answer is on its way (the loop frees the cell after it posts).
      const loop = loopRunning(this.#memory, id)
      if (loop >= 0) this.#workers.terminate(loop)
    }, Math.min(timeout, MAX_TIMEOUT_MS))
    this.#abortTimers.add(timer)
  }

  /** close({ force: true }): the tasks not yet started reject now, as Piscina's. */
  #abortQueued(): void {
    const error = PoolErrors.closedForce()
    for (const task of this.#table.abortQueued()) {
      task.settle()
      task.reject(error)
    }
    this.#afterChange()
  }

  // --- results ---------------------------------------------------------------------------------

  #startDrain(): void {
    this.#drain().catch((error: unknown) => this.#fail(error instanceof Error ? error : new Error(String(error))))
  }

  /** Drains the results port while tasks are in flight; see the file comment. */
  async #drain(): Promise<void> {
    this.#draining = true
    try {
      while (this.#table.inFlight > 0) {
        let controller = this.#drainAbort
        if (controller === undefined || controller.signal.aborted) controller = this.#drainAbort = new AbortController()
        let packet: Packet | null
        try {
          packet = await this.#results.getAsync({ signal: controller.signal })
        } catch (error) {
          if (controller.signal.aborted) continue
          if (error instanceof PortClosedError) return
          throw error
        }
        if (packet !== null) this.#onResult(packet.key as number, packet.bytes, packet.overlapped as number, packet.data)
        this.#takeResults()
        this.#afterChange()
      }
    } finally {
      this.#draining = false
    }
  }

  /** Handles every result already in the results port, without waiting. */
  #takeResults(): void {
    const batch = this.#batch
    for (;;) {
      let count: number
      try {
        count = this.#results.getManyInto(batch, 0)
      } catch (error) {
        if (error instanceof PortClosedError) return
        throw error
      }
      for (let i = 0; i < count; i++) {
        this.#onResult(batch.key(i) as number, batch.bytes(i), batch.overlapped(i) as number, batch.data(i))
      }
      if (count < BATCH) return
    }
  }

  #onResult(key: number, bytes: number, id: number, data: Uint8Array | undefined): void {
    const task = this.#table.take(id)
    if (task === undefined || task.settled) return
    task.settle()
    const enc = tagOf(key)
    if (enc === ENC_SKIPPED) return
    this.#completed++
    if (this.#timing) {
      const times = this.#memory.times
      const slot = slotOf(id)
      const run = times[2 * slot + 1]!
      recordMs(this.#waitTime, times[2 * slot]! - task.createdAt)
      recordMs(this.#runTime, run)
      this.#runTotal += run
    }
    if (enc === ENC_ERROR) {
      task.reject(decodeError(data))
      return
    }
    if (enc === ENC_SIDE) {
      // Sent by postMessage just before this packet; the message may still be on its way.
      if (this.#sideResults.has(id)) {
        const result = this.#sideResults.get(id)
        this.#sideResults.delete(id)
        task.resolve(result)
      } else {
        this.#awaitingSide.set(id, task)
        // The side channel does not keep the process alive: this does, until the message is in.
        this.#sideKeepAlive ??= setInterval(noop, MAX_TIMEOUT_MS)
      }
      return
    }
    let value: unknown
    try {
      value = decodeValue(enc, hiOf(key, enc), bytes, data)
    } catch (error) {
      task.reject(error)
      return
    }
    task.resolve(value)
  }

  /** After slots were freed: post the tasks waiting for one, and tell who waits on the load. */
  #afterChange(): void {
    for (let task = this.#table.next(); task !== undefined; task = this.#table.next()) this.#post(task)
    const inFlight = this.#table.inFlight
    if (this.#needsDrain && inFlight < this.#capacity) {
      this.#needsDrain = false
      this.emit('drain')
    }
    if (inFlight === 0) {
      this.#drainAbort?.abort()
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  /** A loop sent the result of task `id` by postMessage (see #onResult). */
  #onSideResult(id: number, result: unknown): void {
    const task = this.#awaitingSide.get(id)
    if (task === undefined) {
      this.#sideResults.set(id, result)
      return
    }
    this.#awaitingSide.delete(id)
    if (this.#awaitingSide.size === 0) this.#stopSideKeepAlive()
    task.resolve(result)
  }

  #stopSideKeepAlive(): void {
    if (this.#sideKeepAlive !== undefined) clearInterval(this.#sideKeepAlive)
    this.#sideKeepAlive = undefined
  }

  /** A loop asks for the payload of task `id` (it holds transferables): send it, transferred. */
  #sendSide(channel: MessagePort, id: number): void {
    const task = this.#table.peek(id)
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

  // --- workers ---------------------------------------------------------------------------------

  #onMessage(message: unknown): void {
    if (isReport(message)) this.#onReport(message)
    else this.emit('message', message)
  }

  #onReport(report: WorkerReport): void {
    switch (report[REPORT]) {
      case 'packetError':
        this.#packetFailed(decodeError(report.error), makePacket(report.key, report.bytes, report.overlapped, undefined))
        break
    }
  }

  /**
   * A worker's thread exited. The tasks it held are rejected, exactly: the task its loop was
   * running (`running`, which covers a task that untied the thread from the port by waiting on
   * another), and every task packet the port says it held (which covers the moment between the
   * dequeue and the loop's bookkeeping). Results it posted before it died are taken first, so a
   * task that finished keeps its result. Then a replacement starts.
   */
  #onExit(threadId: number, exitCode: number, cause: unknown, running: number[], died: boolean): void {
    if (this.#torn) return
    this.#takeResults()
    let held: Packet[] = []
    try {
      held = this.#tasks.recoverHeld(threadId)
    } catch {
      // The port is closed: the pool is ending, and has settled its tasks.
    }
    const ids = running
    const lost: Packet[] = []
    for (const packet of held) {
      if (isTaskKey(packet.key)) ids.push(packet.overlapped as number)
      else lost.push(packet)
    }
    if (ids.length > 0 || lost.length > 0) {
      const error = PoolErrors.workerDied(threadId, exitCode, cause)
      for (const id of ids) {
        this.#sideResults.delete(id)
        const task = this.#table.take(id)
        if (task === undefined || task.settled) continue
        task.settle()
        task.reject(error)
      }
      for (const packet of lost) this.#packetFailed(error, packet)
    } else if (died && cause !== undefined && this.listenerCount('error') > 0) {
      this.emit('error', cause)
    }
    // Replaced even while close() waits for the pending tasks (the workers stop starting once
    // they are done).
    if (died && this.#failed === undefined) this.#workers.ensure()
    // A loop that left as idle (above minThreads, possibly 0) may leave a task just posted.
    if (this.#elastic && !this.#closing) this.#scaleUp()
    this.#afterChange()
  }

  /**
   * A worker could not start. Another replaces it (the error goes to 'error' listeners, if
   * any), or, after too many in a row (`final`), the pool fails with `error`.
   */
  #onStartFailed(error: Error, final: boolean): void {
    if (final) this.#fail(error)
    else if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  #packetFailed(error: unknown, packet: Packet): void {
    if (this.listenerCount('packetError') > 0) {
      this.emit('packetError', error, packet)
    } else {
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      process.emitWarning(`PortPool: raw packet (key ${String(packet.key)}) failed: ${why}`, 'PortPoolWarning')
    }
  }

  /**
   * The pool cannot run tasks any more (no worker could start, or the results drain broke):
   * every pending and later task rejects with `error`, and `post()` throws it. The workers
   * still running stay until close() or destroy() ends them.
   */
  #fail(error: Error): void {
    if (this.#failed !== undefined) return
    this.#failed = error
    this.#workers.stop()
    this.#rejectAll(error)
  }

  /** Rejects every task still pending with `error` and empties the table. */
  #rejectAll(error: unknown): void {
    for (const task of this.#table.clear()) {
      if (task.settled) continue
      task.settle()
      task.reject(error)
    }
    for (const task of this.#awaitingSide.values()) task.reject(error)
    this.#awaitingSide.clear()
    this.#sideResults.clear()
    this.#stopSideKeepAlive()
    this.#afterChange()
  }

  // --- ending ----------------------------------------------------------------------------------

  #whenIdle(): Promise<void> {
    if (this.#table.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  async #close(): Promise<void> {
    this.#closing = true
    // What close() waits on (Atomics.waitAsync, workers' exits) does not keep the process
    // alive by itself: this does, so that the code after `await pool.close()` runs.
    const keepAlive = setInterval(noop, MAX_TIMEOUT_MS)
    const timeout = this.#options.closeTimeout
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<'expired'>((resolve) => {
      if (timeout !== Infinity) timer = setTimeout(() => resolve('expired'), Math.min(timeout, MAX_TIMEOUT_MS))
    })
    try {
      // 1. Queued and running tasks finish (results keep being drained meanwhile).
      let outcome = await Promise.race([this.#whenIdle().then(() => 'done' as const), expired])
      if (outcome === 'done' && !this.#torn) {
        // 2. Shut the port down: workers handle the raw packets still queued, then every
        //    blocked get() wakes with PortClosedError and the loops end. No loop starts any
        //    more (until now, one replaced a worker that died).
        this.#workers.stop()
        try {
          this.#tasks.shutdown()
        } catch {
          // closed by destroy() meanwhile
        }
        outcome = await Promise.race([this.#workers.whenLoopsEnded().then(() => 'done' as const), expired])
      }
      if (outcome === 'expired') this.#endAll(PoolErrors.closeTimedOut(timeout))
      await this.#teardown()
    } finally {
      if (timer !== undefined) clearTimeout(timer)
      clearInterval(keepAlive)
    }
  }

  async #destroy(): Promise<void> {
    this.#closing = true
    this.#endAll(PoolErrors.destroyed())
    const keepAlive = setInterval(noop, MAX_TIMEOUT_MS)
    try {
      await this.#teardown()
    } finally {
      clearInterval(keepAlive)
    }
  }

  /** Closes both ports (waking every blocked worker) and ends every pending task with `error`. */
  #endAll(error: unknown): void {
    this.#workers.stop()
    for (const timer of this.#abortTimers) clearTimeout(timer)
    this.#abortTimers.clear()
    let leftovers: Packet[] = []
    try {
      leftovers = this.#tasks.close()
    } catch {
      // already closed
    }
    try {
      this.#results.close()
    } catch {
      // already closed
    }
    this.#rejectAll(error)
    for (const packet of leftovers) {
      if (!isTaskKey(packet.key)) this.#packetFailed(error, packet)
    }
  }

  /** Ends the pool once, however many of close() and destroy() ask for it. */
  #teardown(): Promise<void> {
    this.#teardownPromise ??= this.#endWorkers()
    return this.#teardownPromise
  }

  async #endWorkers(): Promise<void> {
    this.#endAll(PoolErrors.closed())
    this.#torn = true
    // Every worker is out of the port's get() now (the ports are closed): Piscina can end them.
    await this.#workers.end()
    this.emit('close')
  }
}
