/**
 * The state one pool's main-thread parts share (submission.ts, results.ts, worker-events.ts,
 * shutdown.ts; port-pool.ts is the facade over them), and the few steps more than one of them
 * takes: posting a task's packet, settling what a change of load unblocks, rejecting
 * everything, reporting a raw packet that failed.
 *
 * Main thread only; no locking.
 */
import type { EventEmitter } from 'node:events'
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks'
import type { CompletionPort } from '../../port/completion-port.js'
import type { Packet } from '../../port/packet.js'
import { noop, MAX_TIMEOUT_MS } from '../../shared.js'
import type { PoolMemory } from '../shared/memory.js'
import type { ResolvedPoolOptions } from './options.js'
import { TaskOutbox } from './outbox.js'
import type { Task, TaskTable } from './task-table.js'
import type { PoolWorkers } from './workers.js'

export class PoolState {
  readonly options: ResolvedPoolOptions
  /** The pool itself, for its events. */
  readonly events: EventEmitter
  readonly tasks: CompletionPort
  readonly results: CompletionPort
  readonly memory: PoolMemory
  readonly table: TaskTable
  /** The task packets admitted this turn, posted together at its end. */
  readonly outbox: TaskOutbox
  /** Set right after the state is made (the workers need the parts that need the state). */
  workers!: PoolWorkers
  /** In-flight tasks at which needsDrain turns true: concurrency (+ maxQueue if finite). */
  readonly capacity: number
  /** minThreads < maxThreads: workers start on demand. */
  readonly elastic: boolean

  needsDrain = false
  /** Resolved, all of them, when no task is in flight. */
  idleWaiters: Array<() => void> = []
  /** Aborts the results drain's wait once nothing is in flight. */
  drainAbort: AbortController | undefined
  /** The results drain is waiting in getAsync() (only then does it need drainAbort to stop). */
  drainWaiting = false
  /** Results sent by postMessage whose packet has not been handled yet, by task id. */
  readonly sideResults = new Map<number, unknown>()
  /** Tasks whose result packet came before the postMessage that carries their result. */
  readonly awaitingSide = new Map<number, Task>()
  sideKeepAlive: ReturnType<typeof setInterval> | undefined

  /** close() or destroy() was called: no new tasks or packets. */
  closing = false
  /** The ports are closed and the workers are being ended. */
  torn = false
  /** Why the pool cannot run tasks any more (see WorkerEventHandlers.fail). */
  failed: Error | undefined

  completed = 0
  runTotal = 0
  readonly start = performance.now()
  #runTime: RecordableHistogram | undefined
  #waitTime: RecordableHistogram | undefined
  /** Run times (see {@link PoolState.makeHistograms}; made on first use otherwise). */
  get runTime(): RecordableHistogram {
    return (this.#runTime ??= createHistogram())
  }
  /** Times from `run()` to a worker's start (as `runTime`). */
  get waitTime(): RecordableHistogram {
    return (this.#waitTime ??= createHistogram())
  }

  /**
   * Makes the timing histograms now, if the pool records timing: the constructor calls this
   * once its workers are on their way (this thread waits for them then). Made on first use,
   * they cost the pool's first result a quarter of a millisecond (two native histograms).
   */
  makeHistograms(): void {
    if (!this.options.recordTiming) return
    void this.runTime
    void this.waitTime
  }

  constructor(
    options: ResolvedPoolOptions,
    events: EventEmitter,
    ports: { tasks: CompletionPort; results: CompletionPort },
    memory: PoolMemory,
    table: TaskTable,
  ) {
    this.options = options
    this.events = events
    this.tasks = ports.tasks
    this.results = ports.results
    this.memory = memory
    this.table = table
    this.outbox = new TaskOutbox(
      ports.tasks,
      (task, error) => this.#postFailed(task, error),
      {
        offer: (task) => this.#offerBoot(task),
        holds: () => this.workers?.holdsTasks === true,
        withdraw: () => this.workers?.withdrawOffers(),
      },
    )
    this.capacity = options.concurrency + (options.maxQueue === Infinity ? 0 : options.maxQueue)
    this.elastic = options.minThreads < options.maxThreads
  }

  /**
   * Posts the packet of `task`, which holds a slot: at the end of this turn, with the other
   * tasks admitted in it (see outbox.ts). A post that fails rejects the task.
   */
  post(task: Task): void {
    this.outbox.add(task)
  }

  /**
   * Hands `task` to a starting worker as its boot task, if the pool boots (pool/main/workers.ts),
   * its payload does not travel by postMessage (a transfer could not come back if the task
   * comes back unrun), and the task port holds no packet posted before it (FIFO).
   */
  #offerBoot(task: Task): boolean {
    // (The workers are made after the state: none yet while it is built.)
    const workers = this.workers as PoolWorkers | undefined
    if (workers === undefined || !workers.takesBootTasks || task.side !== undefined) return false
    try {
      if (this.tasks.stats().queued > 0) return false
    } catch {
      return false // the port closed: the pool is ending
    }
    return workers.offerBootTask(task)
  }

  #postFailed(task: Task, error: unknown): void {
    this.table.take(task.id)
    if (!task.settled) {
      task.settle()
      task.reject(error)
    }
  }

  /** After slots were freed: post the tasks waiting for one, and tell who waits on the load. */
  afterChange(): void {
    const table = this.table
    for (let task = table.next(); task !== undefined; task = table.next()) this.post(task)
    const inFlight = table.inFlight
    if (this.needsDrain && inFlight < this.capacity) {
      this.needsDrain = false
      this.events.emit('drain')
    }
    if (inFlight === 0) {
      // A drain that is running (it called this) ends by itself; one that waits must be woken.
      // Not aborting a running one saves a new AbortController per burst of results.
      if (this.drainWaiting) this.drainAbort?.abort()
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  /** Resolves once no task is in flight. */
  whenIdle(): Promise<void> {
    if (this.table.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Tasks (and raw packets) waiting for a worker. */
  queued(): number {
    let queued = this.table.waiting + this.outbox.size
    if (!this.torn) {
      try {
        queued += this.tasks.stats().queued
      } catch {
        // closed meanwhile
      }
    }
    return queued
  }

  /** Starts one more worker if tasks are queued, no worker is idle, and maxThreads allows. */
  scaleUp(): void {
    if (this.closing || this.workers.live >= this.options.maxThreads) return
    const port = this.tasks.stats()
    if (port.waiting === 0 && port.queued + this.outbox.size > 0) this.workers.start()
  }

  /** Rejects every task still pending with `error` and empties the table. */
  rejectAll(error: unknown): void {
    for (const task of this.table.clear()) {
      if (task.settled) continue
      task.settle()
      task.reject(error)
    }
    for (const task of this.awaitingSide.values()) task.reject(error)
    this.awaitingSide.clear()
    this.sideResults.clear()
    this.stopSideKeepAlive()
    this.afterChange()
  }

  /** Keeps the process alive while a result is on its way over a side channel (unref'd). */
  startSideKeepAlive(): void {
    this.sideKeepAlive ??= setInterval(noop, MAX_TIMEOUT_MS)
  }

  stopSideKeepAlive(): void {
    if (this.sideKeepAlive !== undefined) clearInterval(this.sideKeepAlive)
    this.sideKeepAlive = undefined
  }

  /** A raw packet's handler threw, or its worker died: 'packetError', else a process warning. */
  packetFailed(error: unknown, packet: Packet): void {
    if (this.events.listenerCount('packetError') > 0) {
      this.events.emit('packetError', error, packet)
    } else {
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      process.emitWarning(`PortPool: raw packet (key ${String(packet.key)}) failed: ${why}`, 'PortPoolWarning')
    }
  }
}
