/**
 * `PortPool`: Windows' thread-pool I/O (`CreateThreadpoolIo`) on worker threads. This file is
 * the facade; the work is done by the main-thread parts in main/ (submission.ts, results.ts,
 * worker-events.ts, shutdown.ts, over the state they share in state.ts; workers.ts starts and
 * follows the workers through Piscina), by each worker's loop in worker/ (it blocks on the
 * pool's completion port; the port's concurrency rule decides how many workers run at once),
 * and by what both sides share in shared/ (the packet codec, the shared memory, the protocol,
 * the errors).
 *
 * The data path of one task: `run()` encodes the payload into one packet, gives the task a
 * slot and posts the packet to the task port → the most recent idle worker takes it (or the
 * worker that just finished, without a context switch) and runs the task → it posts the
 * outcome to the results port → this thread drains that port asynchronously, in batches, and
 * settles the promises. No message per task and no queue of our own: the port is the queue.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Worker } from 'node:worker_threads'
import { Errors } from '../errors.js'
import type { PortHandle } from '../port/handle.js'
import { createPoolMemory } from './shared/memory.js'
import { PoolErrors } from './shared/errors.js'
import type { TaskName, TaskPayload, TaskResult } from './shared/typed.js'
import { resolvePoolOptions, type PortPoolOptions, type ResolvedPoolOptions } from './main/options.js'
import { shareCodeCacheOnce } from './shared/code-cache.js'
import { createPoolPorts } from './main/ports.js'
import { Results } from './main/results.js'
import { Shutdown } from './main/shutdown.js'
import { PoolState } from './main/state.js'
import { summarize, type PoolHistogram, type PoolStats } from './main/stats.js'
import { Submission, type RunOptions } from './main/submission.js'
import { TaskTable } from './main/task-table.js'
import { WorkerEventHandlers } from './main/worker-events.js'
import { abandonLaunch, launchWorkers, PoolWorkers, type LaunchedWorkers } from './main/workers.js'

export type { RunOptions } from './main/submission.js'

/** Options of {@link PortPool.close}. */
export interface CloseOptions {
  /**
   * Rejects the tasks that have not started at once (with {@link AbortError}, cause
   * `'pool is closed'`, as Piscina), instead of running them; running tasks still finish.
   * @default false
   */
  force?: boolean
}

/** What `new Worker` throws for a bad option, as an error that names the option. */
function workerOptionError(error: unknown): unknown {
  const { name, code } = (error ?? {}) as { name?: unknown; code?: unknown }
  if (name === 'DataCloneError') return PoolErrors.workerOption('workerData', error)
  if (code === 'ERR_WORKER_INVALID_EXEC_ARGV') return PoolErrors.workerOption('execArgv', error)
  return error
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
export class PortPool<Tasks = any> extends EventEmitter {
  readonly #state: PoolState
  readonly #submission: Submission
  readonly #shutdown: Shutdown

  /**
   * Starts the pool: its `minThreads` workers at once, each loading the task module, then taking
   * a first task offered to it (docs/pool.md, "Time to the first result") or waiting on the
   * pool's port.
   *
   * @param options - see {@link PortPoolOptions}.
   * @throws {TypeError} an option has the wrong type, is unknown, or is a Piscina option that
   *   PortPool does not support; the message names it.
   * @throws {RangeError} an option is out of range, or contradicts another (both named).
   */
  constructor(options: PortPoolOptions) {
    super()
    const o = resolvePoolOptions(options)
    // The workers first: their threads boot (tens of milliseconds) while the rest is made.
    let launched: LaunchedWorkers
    try {
      launched = launchWorkers(o)
    } catch (error) {
      // `new Worker` refused an option (no worker was started): say which.
      throw workerOptionError(error)
    }
    let state: PoolState
    try {
      const maxLoops = 2 * o.maxThreads + 1
      const memory = createPoolMemory(maxLoops, o.concurrentTasksPerWorker, o.recordTiming)
      const ports = createPoolPorts(o.concurrency)
      state = this.#state = new PoolState(o, this, ports, memory, new TaskTable(memory.state))
      let submission: Submission | undefined
      const results: Results = new Results(state, (error) => events.fail(error))
      const events: WorkerEventHandlers = new WorkerEventHandlers(state, results, () => submission!)
      submission = this.#submission = new Submission(state, results)
      this.#shutdown = new Shutdown(state, submission)
      state.workers = new PoolWorkers(
        launched,
        o,
        memory,
        maxLoops,
        { tasks: () => ports.tasks.handle, results: () => ports.results.handle },
        events,
      )
      // The first starts: one for each worker launchWorkers made, each sent to it at once.
      state.workers.ensure()
    } catch (error) {
      // (Nothing here throws but a failed allocation; the workers must not outlive it.)
      abandonLaunch(launched)
      throw error
    }
    // The first worker is on its way: the main thread's code cache for it and every later one.
    shareCodeCacheOnce()
    state.makeHistograms()
  }

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
    return this.#submission.run(payload, options) as Promise<TaskResult<Tasks, Name>>
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
    this.#submission.post(key, bytes, overlapped, data)
  }


  /**
   * A handle of the pool's port, for other threads to post raw packets to the pool with
   * `CompletionPort.fromHandle(handle).post(…)` (number keys below 2^52). A new handle per read.
   * @throws {PortClosedError} the pool is closed.
   */
  get handle(): PortHandle {
    return this.#state.tasks.handle
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
    let force = false
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') return Promise.reject(PoolErrors.closeOptions(options))
      if (options.force !== undefined && typeof options.force !== 'boolean') {
        return Promise.reject(Errors.invalidType('options.force', 'a boolean', options.force))
      }
      force = options.force === true
    }
    return this.#shutdown.close(force)
  }


  /**
   * Stops the pool now: rejects every queued and running task with {@link PoolClosedError},
   * closes the port (which wakes the blocked workers), ends every worker and resolves once every
   * worker thread has exited. Idempotent; never rejects.
   */
  destroy(): Promise<void> {
    return this.#shutdown.destroy()
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
    return this.#state.options.minThreads
  }

  /** The most worker threads ({@link PortPoolOptions.maxThreads}). */
  get maxThreads(): number {
    return this.#state.options.maxThreads
  }

  /** Worker threads waiting for work in the pool's port (0 once the pool is closed). */
  get idleThreads(): number {
    if (this.#state.torn) return 0
    try {
      return this.#state.tasks.stats().waiting
    } catch {
      return 0
    }
  }

  /** A snapshot of the pool's counters and its raw histograms. */
  stats(): PoolStats {
    let queued = 0
    let running = 0
    let waiting = 0
    if (!this.#state.torn) {
      try {
        const port = this.#state.tasks.stats()
        queued = port.queued
        // (A worker running its boot task, before its loop, is not on the port: pool/worker/boot-task.ts.)
        running = port.running + this.#state.workers.bootRunning
        waiting = port.waiting
      } catch {
        // closed meanwhile
      }
    }
    return {
      completed: this.#state.completed,
      inFlight: this.#state.table.inFlight,
      queued: queued + this.#state.table.waiting + this.#state.outbox.size,
      running,
      waiting,
      threads: this.#state.workers.live,
      utilization: this.utilization,
      runTime: this.#state.runTime,
      waitTime: this.#state.waitTime,
    }
  }

  /** The options in force, every default applied. */
  get options(): ResolvedPoolOptions {
    return this.#state.options
  }

  /** Tasks that finished (with a result or the task's own error). */
  get completed(): number {
    return this.#state.completed
  }

  /** Tasks (and raw packets) waiting for a worker. */
  get queueSize(): number {
    return this.#state.queued()
  }

  /**
   * `true` while the tasks in flight reach the pool's capacity: `concurrency`, plus `maxQueue`
   * when it is finite. It is set by `run()` (with a `'needsDrain'` event) and cleared when
   * tasks finish (with a `'drain'` event), for callers that apply back-pressure.
   */
  get needsDrain(): boolean {
    return this.#state.needsDrain
  }

  /**
   * The share of the pool's capacity spent running tasks since it started: total task run
   * time / (elapsed time × `concurrency`), between 0 and 1 (0 when timing is off).
   */
  get utilization(): number {
    const capacity = this.duration * this.#state.options.concurrency
    return capacity > 0 ? this.#state.runTotal / capacity : 0
  }

  /** Milliseconds since the pool was created. */
  get duration(): number {
    return performance.now() - this.#state.start
  }

  /** The worker threads (Piscina's `Worker` objects). */
  get threads(): Worker[] {
    return this.#state.workers.threads
  }

  /** Piscina's `histogram`: run and wait time summaries in milliseconds, and their reset. */
  get histogram(): PoolHistogram {
    const runTime = this.#state.runTime
    const waitTime = this.#state.waitTime
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
}
