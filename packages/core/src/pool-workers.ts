/**
 * The pool's workers: Piscina starts, limits, replaces and ends them; this file gives each one
 * its loop and follows it until its thread exits.
 *
 * One loop per worker: a start is a Piscina task, `start(init)` of pool-worker.ts, and this
 * file's load balancer hands each start to a worker that never had one (or to none: Piscina
 * then starts a new worker). The start returns at once and the loop runs on in that worker's
 * background, so Piscina sees an idle worker: it neither refs it (an idle pool lets the process
 * exit) nor retires it (idleTimeout is ours, see pool-worker.ts).
 *
 * Each loop has an index into the loop cells of shared memory (pool-memory.ts): its thread id,
 * its phase, and the task it is running. When a worker's thread exits, the cells of its loop
 * say which task it was running and whether it ended normally; the pool does the rest
 * (recovery, replacement) through {@link WorkerEvents.exit}.
 */
import { fileURLToPath } from 'node:url'
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads'
import { Piscina } from 'piscina'
import type { PortHandle } from './handle.js'
import {
  LIVE_LOOPS,
  LOOP_CELLS,
  LOOP_ENDED,
  LOOP_IDLE_EXIT,
  LOOP_STARTING,
  waitAsync,
  type PoolMemory,
} from './pool-memory.js'
import type { ResolvedPoolOptions } from './pool-options.js'
import type { LoopInit } from './pool-protocol.js'

/** The workers' entry file (next to this one, in dist/): a CommonJS shim, see pool-worker-entry.cts. */
const WORKER_ENTRY = fileURLToPath(new URL('./pool-worker-entry.cjs', import.meta.url))

/** Piscina's view of one of its workers, as its load balancer sees it. */
interface BalancedWorker {
  readonly id: number
  readonly currentUsage: number
  readonly terminating: boolean
  readonly destroyed: boolean
}

/** One loop, as the main thread tracks it. */
interface LoopRecord {
  readonly index: number
  /** The main thread's end of the loop's side channel. */
  readonly side: MessagePort
}

/** What the workers tell the pool. */
export interface WorkerEvents {
  /** A message a worker posted on its `parentPort` (the pool's reports and the user's). */
  message(message: unknown): void
  /**
   * A thread that ran a loop exited. `running`: the ids of the tasks its loop was running;
   * `died`: it did not leave normally (idle exit or port closed); `cause`: its uncaught error.
   */
  exit(threadId: number, exitCode: number, cause: unknown, running: number[], died: boolean): void
  /** A worker failed before its loop could start. */
  startFailed(cause: unknown): void
  /** A loop asks, over its side channel, for the payload of task `id`. */
  side(channel: MessagePort, id: number): void
}

/** The two ports a loop opens. */
export interface PoolPorts {
  tasks(): PortHandle
  results(): PortHandle
}

function noop(): void {}

export class PoolWorkers {
  readonly #options: ResolvedPoolOptions
  readonly #memory: PoolMemory
  readonly #ports: PoolPorts
  readonly #events: WorkerEvents
  readonly #piscina: Piscina
  readonly #loops: Array<LoopRecord | undefined>
  /** Threads that have been given a loop. */
  readonly #assigned = new Set<number>()
  readonly #lastError = new Map<number, unknown>()
  /** No more loops start. */
  #stopped = false
  #ended: Promise<void> | undefined

  constructor(options: ResolvedPoolOptions, memory: PoolMemory, maxLoops: number, ports: PoolPorts, events: WorkerEvents) {
    this.#options = options
    this.#memory = memory
    this.#ports = ports
    this.#events = events
    this.#loops = new Array<LoopRecord | undefined>(maxLoops).fill(undefined)
    this.#piscina = new Piscina({
      filename: WORKER_ENTRY,
      minThreads: options.minThreads,
      // Room for workers on their way out (idle exits) next to the live ones; the loops
      // themselves never exceed maxThreads.
      maxThreads: 2 * options.maxThreads,
      idleTimeout: Infinity,
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      loadBalancer: this.#balance as never,
      resourceLimits: options.resourceLimits,
      env: options.env,
      argv: options.argv as string[] | undefined,
      execArgv: options.execArgv,
      workerData: options.workerData,
      trackUnmanagedFds: options.trackUnmanagedFds,
      niceIncrement: options.niceIncrement,
    } as ConstructorParameters<typeof Piscina>[0])
    this.#piscina.on('message', (message: unknown) => this.#events.message(message))
    // A worker's error reaches us through the worker itself (#watch); Piscina's copy of it
    // ('error' when the worker runs no Piscina task, which is always) is not needed.
    this.#piscina.on('error', noop)
  }

  /** Loops started and not ended. */
  get live(): number {
    return Atomics.load(this.#memory.control, LIVE_LOOPS)
  }

  /** Piscina's worker threads. */
  get threads(): Worker[] {
    return this.#piscina.threads
  }

  /** Starts loops until `minThreads` run. */
  ensure(): void {
    while (!this.#stopped && this.live < this.#options.minThreads) {
      if (!this.start()) return
    }
  }

  /** Starts one more loop. `false` if none can start now. */
  start(): boolean {
    if (this.#stopped || this.live >= this.#options.maxThreads) return false
    const index = this.#loops.indexOf(undefined)
    if (index < 0) return false
    const { control, current } = this.#memory
    const cell = LOOP_CELLS + 2 * index
    Atomics.store(control, cell, 0)
    Atomics.store(control, cell + 1, LOOP_STARTING)
    current[index] = 0
    Atomics.add(control, LIVE_LOOPS, 1)
    const { port1, port2 } = new MessageChannel()
    const record: LoopRecord = { index, side: port1 }
    this.#loops[index] = record
    port1.on('message', (id: number) => this.#events.side(port1, id))
    port1.unref()
    const o = this.#options
    const init: LoopInit = {
      loop: index,
      tasks: this.#ports.tasks(),
      results: this.#ports.results(),
      memory: this.#memory,
      filename: o.filename,
      defaultName: o.name,
      minThreads: o.minThreads,
      idleTimeout: o.idleTimeout,
      recordTiming: o.recordTiming,
      timeOrigin: performance.timeOrigin,
      side: port2,
    }
    this.#piscina.run(init, { transferList: [port2] }).then(noop, (error: unknown) => this.#onStartFailed(record, error))
    return true
  }

  /** No more loops start (the pool is closing). */
  stop(): void {
    this.#stopped = true
  }

  /** Resolves once every loop has ended (its port closed, or its thread exited). */
  async whenLoopsEnded(): Promise<void> {
    const control = this.#memory.control
    const waits: Array<Promise<void>> = []
    for (const record of this.#loops) {
      if (record === undefined) continue
      const cell = LOOP_CELLS + 2 * record.index + 1
      waits.push(
        (async () => {
          for (;;) {
            const phase = Atomics.load(control, cell)
            if (phase === LOOP_ENDED || phase === LOOP_IDLE_EXIT) return
            const wait = waitAsync(control, cell, phase)
            if (wait.async) await wait.value
          }
        })(),
      )
    }
    await Promise.all(waits)
  }

  /**
   * Ends every worker (Piscina terminates them). The loops must be out of the port's `get()`
   * first (the ports closed): a thread blocked in native code cannot be terminated. Once.
   */
  end(): Promise<void> {
    this.#stopped = true
    this.#ended ??= this.#piscina.destroy().then(() => {
      for (const record of this.#loops) if (record !== undefined) this.#endLoop(record)
    })
    return this.#ended
  }

  /** Piscina's load balancer: each start goes to a worker that has never had one. */
  readonly #balance = (_task: unknown, workers: BalancedWorker[]): BalancedWorker | null => {
    for (const worker of workers) {
      if (worker.currentUsage !== 0 || worker.terminating || worker.destroyed || this.#assigned.has(worker.id)) {
        continue
      }
      this.#assigned.add(worker.id)
      this.#watch(worker.id)
      return worker
    }
    return null
  }

  /** Follows the worker `threadId`: its uncaught error, and its exit. */
  #watch(threadId: number): void {
    const worker = this.#piscina.threads.find((w) => w.threadId === threadId)
    if (worker === undefined) return
    worker.on('error', (error: unknown) => this.#lastError.set(threadId, error))
    worker.once('exit', (code: number) => this.#onExit(threadId, code))
  }

  #onExit(threadId: number, exitCode: number): void {
    this.#assigned.delete(threadId)
    const cause = this.#lastError.get(threadId)
    this.#lastError.delete(threadId)
    const { control, current } = this.#memory
    const running: number[] = []
    let found = false
    let died = false
    for (const record of this.#loops) {
      if (record === undefined || Atomics.load(control, LOOP_CELLS + 2 * record.index) !== threadId) continue
      found = true
      const phase = Atomics.load(control, LOOP_CELLS + 2 * record.index + 1)
      if (current[record.index] !== 0) running.push(current[record.index]!)
      if (phase !== LOOP_IDLE_EXIT) {
        // An idle loop left the live count itself; any other end is counted here.
        Atomics.sub(control, LIVE_LOOPS, 1)
        if (phase !== LOOP_ENDED) died = true
      }
      this.#endLoop(record)
    }
    if (found) this.#events.exit(threadId, exitCode, cause, running, died)
  }

  /** Piscina rejected a start: if its loop never ran (the worker failed to start), forget it. */
  #onStartFailed(record: LoopRecord, error: unknown): void {
    const control = this.#memory.control
    if (this.#loops[record.index] !== record || Atomics.load(control, LOOP_CELLS + 2 * record.index) !== 0) return
    this.#endLoop(record)
    Atomics.sub(control, LIVE_LOOPS, 1)
    if (!this.#stopped) this.#events.startFailed(error)
  }

  #endLoop(record: LoopRecord): void {
    const control = this.#memory.control
    const phase = LOOP_CELLS + 2 * record.index + 1
    if (Atomics.load(control, phase) !== LOOP_IDLE_EXIT) Atomics.store(control, phase, LOOP_ENDED)
    Atomics.notify(control, phase)
    record.side.close()
    this.#loops[record.index] = undefined
  }
}
