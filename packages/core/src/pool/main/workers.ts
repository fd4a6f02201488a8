/**
 * The pool's workers: Piscina starts, limits, replaces and ends them; this file gives each one
 * its loop and follows it until its thread exits.
 *
 * One loop per worker: a start is a Piscina task, `start(init)` of pool/worker/loop.ts, and this
 * file's load balancer hands each start to a worker that never had one (or to none: Piscina
 * then starts a new worker). The start loads the task module, opens the ports and answers; the
 * loop then runs on in that worker's background, so Piscina sees an idle worker: it neither
 * refs it (an idle pool lets the process exit) nor retires it (idleTimeout is ours, see
 * pool/worker/loop.ts).
 *
 * Each loop has an index into the loop cells of shared memory (pool/shared/memory.ts): its thread id,
 * its phase, and the task it is running. When a worker's thread exits, the cells of its loop
 * say which task it was running and whether it ended normally; the pool does the rest
 * (recovery, replacement) through {@link WorkerEvents.exit}.
 *
 * Starts that fail. A worker may fail before its loop runs: its thread cannot start (a
 * `resourceLimits` too small, a preload that throws), it exits or crashes while the task module
 * loads, or the module throws at import. Each such failure is a failed start, and another start
 * replaces it, up to {@link MAX_START_FAILURES} failed starts in a row (a start whose loop runs
 * resets the count); then the pool fails ({@link WorkerEvents.startFailed}). One case needs
 * care: Piscina hands a task only to a worker that said it is ready, and when a worker that
 * never got ready dies, it stops starting workers for its queue. A start waiting in that queue
 * would wait forever, so every Piscina worker is watched from the moment it exists: when one
 * dies before it took a start and the starts waiting outnumber the workers still booting, the
 * surplus starts are taken back from Piscina's queue (each is abortable) and counted as failed.
 */
import { fileURLToPath } from 'node:url'
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads'
import type { Piscina } from 'piscina'
import type { PortHandle } from '../../port/handle.js'
import { bundleRequire, noop, waitAsync } from '../../shared.js'
import { PoolErrors } from '../shared/errors.js'
import { PISCINA_QUEUE_OPTIONS } from '../shared/piscina-symbols.js'
import {
  LIVE_LOOPS,
  LOOP_CELLS,
  LOOP_ENDED,
  LOOP_IDLE_EXIT,
  LOOP_BOOT,
  LOOP_STARTING,
  BOOT_HANDING,
  BOOT_OPEN,
  BOOT_WITHDRAWN,
  clearLoop,
  runningIn,
  type PoolMemory,
} from '../shared/memory.js'
import type { ResolvedPoolOptions } from './options.js'
import { HANDLER_PREFIX, isBootAnswer, type BootAnswer, type BootTask, type LoopInit, type SideResult, type StartResult } from '../shared/protocol.js'
import { decodeError } from '../shared/codec.js'
import type { Task } from './task-table.js'

/**
 * The workers' entry file, pool/worker/entry.cts. @iocp/core runs as one bundle (dist/core.cjs,
 * see scripts/bundle.mjs), and the entry is built beside it, so this URL is relative to the
 * bundle, not to this source file.
 */
const WORKER_ENTRY = fileURLToPath(new URL('./worker-entry.cjs', import.meta.url))

/** Piscina's class, loaded by the first pool (so `import '@iocp/core'` does not load Piscina). */
let PiscinaClass: typeof Piscina | undefined
function loadPiscina(): typeof Piscina {
  return (PiscinaClass ??= (bundleRequire('piscina') as typeof import('piscina')).Piscina)
}

/** Ends the workers of a launch that no pool took over (its constructor threw after launchWorkers). */
export function abandonLaunch(launched: LaunchedWorkers): void {
  void launches.get(launched)?.piscina.destroy()
}

/** Failed starts in a row after which the pool gives up (see the file comment). */
export const MAX_START_FAILURES = 3

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
  /** Takes the start back while it waits in Piscina's queue. */
  readonly abort: AbortController
  /** The threadId of the worker the start was handed to; 0 while it waits in Piscina's queue. */
  thread: number
  /** Why the loop cannot start, as its start answered (the task module failed to load). */
  failure: Error | undefined
  /** The boot offers made to this start (their claim indexes), until each is answered (or its thread is gone). */
  readonly offers: Set<number>
}

/** A task on offer to the starting loops as a boot task (see PoolWorkers.offerBootTask). */
interface BootOffer {
  readonly task: Task
  /** Its claim index in memory.bootClaims. */
  readonly claim: number
  /** Loops it was offered to that have not answered it (nor ended). */
  pending: number
}

/** One of Piscina's worker threads, followed until it exits. */
interface Watched {
  readonly worker: Worker
  readonly threadId: number
  /** Its last uncaught error. */
  error: unknown
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>
}

/** What a start carries for the load balancer: which loop it starts. */
interface StartTag {
  readonly loop: number
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
  /**
   * A worker failed before its loop could run. `final`: that was the last of
   * {@link MAX_START_FAILURES} in a row, no more loops start and the pool must fail with
   * `error`; otherwise another start replaces it.
   */
  startFailed(error: Error, final: boolean): void
  /** A loop asks, over its side channel, for the payload of task `id`. */
  side(channel: MessagePort, id: number): void
  /** A loop sent, over its side channel, the result of task `id` (its packet follows). */
  sideResult(id: number, result: unknown): void
  /**
   * A boot task that did not run (no worker took it before the pool booted, or the worker that
   * took it died first): it goes ahead of the tasks still held.
   */
  bootBack(task: Task): void
  /** {@link PoolWorkers.holdsTasks} may have turned false: post the tasks that wait. */
  holdEnded(): void
  /** A boot task's result packet, sent on its loop's side channel. */
  bootResult(key: number, bytes: number, id: number, data: Uint8Array | undefined): void
}

/** The two ports a loop opens. */
export interface PoolPorts {
  tasks(): PortHandle
  results(): PortHandle
}

/**
 * Piscina, made as the first thing of a pool: its constructor starts the pool's first workers.
 * Opaque: only {@link PoolWorkers} takes it over (Piscina's own types stay out of the package's
 * declarations, which a consumer's compiler reads; Piscina's do not compile everywhere).
 */
export interface LaunchedWorkers {
  readonly [launchedBrand]: true
}
declare const launchedBrand: unique symbol

/** What a {@link LaunchedWorkers} holds. */
interface Launched {
  readonly piscina: Piscina
  /** Sets Piscina's load balancer (until then, every task waits). */
  balanceWith(balancer: Balancer): void
}
const launches = new WeakMap<LaunchedWorkers, Launched>()

/** Piscina's load balancer: the worker a task goes to, or null to keep it waiting. */
type Balancer = (task: Record<symbol, unknown>, workers: BalancedWorker[]) => BalancedWorker | null

/**
 * Creates the pool's Piscina, whose constructor starts its first workers (`minThreads`), before
 * anything else of the pool is made: a worker's thread takes ~50 ms to boot, and the pool is
 * made meanwhile. Hand it to {@link PoolWorkers}, which balances its tasks from then on.
 * @throws what `new Worker` throws for the options (bad `execArgv`, unclonable `workerData`).
 */
export function launchWorkers(options: ResolvedPoolOptions): LaunchedWorkers {
  let balance: Balancer = () => null
  const piscina = new (loadPiscina())({
    filename: WORKER_ENTRY,
    // The first workers are Piscina's minThreads, made by its constructor: Piscina takes
    // those as ready at once, so each start is sent as soon as it is made and waits in the
    // worker, instead of going out only once the worker has told this thread it is ready (a
    // round trip of 1-3 ms, most of what a new pool's first result cost beyond Piscina's).
    // After that, minThreads is 0 (below).
    minThreads: options.minThreads,
    // Each worker starts loading the task module as Piscina loads the entry (protocol.ts).
    name: HANDLER_PREFIX + options.filename,
    // Room for workers on their way out (idle exits) next to the live ones; the loops
    // themselves never exceed maxThreads.
    maxThreads: 2 * options.maxThreads,
    idleTimeout: Infinity,
    atomics: 'disabled',
    concurrentTasksPerWorker: 1,
    recordTiming: false,
    loadBalancer: ((task: Record<symbol, unknown>, workers: BalancedWorker[]) => balance(task, workers)) as never,
    resourceLimits: options.resourceLimits,
    env: options.env,
    argv: options.argv as string[] | undefined,
    execArgv: options.execArgv,
    workerData: options.workerData,
    trackUnmanagedFds: options.trackUnmanagedFds,
    niceIncrement: options.niceIncrement,
  } as ConstructorParameters<typeof Piscina>[0])
  // From now on Piscina starts a worker for each start we give it, and none of its own: a
  // dead worker is replaced by our start (see ensure()). `options` is Piscina's own options
  // object (test/pool/piscina-contract.test.ts checks that this takes effect).
  ;(piscina.options as { minThreads: number }).minThreads = 0
  const launched = {} as LaunchedWorkers
  launches.set(launched, {
    piscina,
    balanceWith: (balancer) => {
      balance = balancer
    },
  })
  return launched
}

export class PoolWorkers {
  readonly #options: ResolvedPoolOptions
  readonly #memory: PoolMemory
  readonly #ports: PoolPorts
  readonly #events: WorkerEvents
  readonly #piscina: Piscina
  readonly #loops: Array<LoopRecord | undefined>
  /** Threads that have been given a loop. */
  readonly #assigned = new Set<number>()
  /** Every Piscina worker whose thread has not exited yet, by threadId. */
  readonly #watched = new Map<number, Watched>()
  /** Failed starts since the last start whose loop ran. */
  #failures = 0
  /**
   * Boot tasks are offered: with one task per loop (boot-task.ts runs one task alone), and
   * `concurrency` >= `maxThreads`, where each worker runs one task at a time and no task can
   * run beside the boot tasks above the limit (a boot task does not count on the port).
   */
  readonly #bootTasks: boolean
  /** A loop has run: the pool has booted, and hands out no more boot tasks. */
  #booted = false
  /** Boot offers not settled yet, by claim index (see offerBootTask). */
  readonly #offers = new Map<number, BootOffer>()
  /** The next claim index: each offer has its own, never reused (memory.bootClaims). */
  #nextClaim = 0
  /** No more loops start. */
  #stopped = false
  #ended: Promise<void> | undefined

  /** Takes over `launched`'s Piscina (see {@link launchWorkers}). */
  constructor(
    launched: LaunchedWorkers,
    options: ResolvedPoolOptions,
    memory: PoolMemory,
    maxLoops: number,
    ports: PoolPorts,
    events: WorkerEvents,
  ) {
    this.#options = options
    this.#memory = memory
    this.#ports = ports
    this.#events = events
    this.#loops = new Array<LoopRecord | undefined>(maxLoops).fill(undefined)
    this.#bootTasks = options.concurrentTasksPerWorker === 1 && options.concurrency >= options.maxThreads
    const { piscina, balanceWith } = launches.get(launched)!
    this.#piscina = piscina
    balanceWith(this.#balance)
    this.#piscina.on('message', (message: unknown) => this.#events.message(message))
    // A worker's error reaches us through the worker itself (#scan); Piscina's copy of it
    // ('error' when the worker runs no Piscina task, which is always) is not needed.
    this.#piscina.on('error', noop)
    // Piscina may start a worker of its own accord (to keep minThreads, or for its queue), and
    // drops a worker that fails before it is ready: follow the one, rescue the starts that were
    // waiting for the other. Piscina emits both before it is done with what caused them: look
    // once it is.
    this.#piscina.on('workerCreate', () => queueMicrotask(() => this.#scan()))
    this.#piscina.on('workerDestroy', (worker: BalancedWorker) => {
      const threadId = worker.id
      queueMicrotask(() => {
        this.#scan()
        this.#rescueStarts(threadId, undefined, this.#watched.get(threadId)?.error)
      })
    })
    this.#scan()
  }

  /** Loops started and not ended. */
  get live(): number {
    return Atomics.load(this.#memory.control, LIVE_LOOPS)
  }

  /** Whether a task may go to a starting worker as its boot task now: the pool boots (no loop has run). */
  get takesBootTasks(): boolean {
    return this.#bootTasks && !this.#booted && !this.#stopped
  }

  /**
   * Offers `task` to every loop whose worker has not run its start yet (its boot gate is open:
   * see pool/shared/memory.ts), on each loop's side channel, and to each loop started later
   * while it is unclaimed: the first of those workers to start takes it as its boot task
   * (boot-task.ts), before it loads the bundle; the others send it back. So a new pool's first
   * result comes from whichever worker is up first, and as soon as Piscina's would. Once a loop
   * runs, the offers no worker took are withdrawn and go to the port, ahead of the tasks held
   * meanwhile ({@link holdsTasks}). `false` if it is not offered (as many tasks are on offer
   * as loops can take them, or every start has run).
   */
  offerBootTask(task: Task): boolean {
    if (!this.takesBootTasks || this.#nextClaim >= this.#memory.bootClaims.length) return false
    const open = this.#loops.filter((r): r is LoopRecord => r !== undefined && Atomics.load(this.#memory.boot, r.index) === BOOT_OPEN)
    // Each worker runs one boot task: no more on offer than loops that may still take one.
    if (this.#unclaimed().length >= open.length) return false
    // The task keeps its payload until its answer comes: if it comes back unrun, it goes the
    // usual way with it.
    const offer: BootOffer = { task, claim: this.#nextClaim, pending: 0 }
    for (const record of open) this.#offerTo(record, offer)
    if (offer.pending === 0) return false
    this.#nextClaim++
    this.#offers.set(offer.claim, offer)
    return true
  }

  /** Whether tasks wait in the outbox: while an offer is unclaimed, no later task may go ahead of it. */
  get holdsTasks(): boolean {
    return this.takesBootTasks && this.#unclaimed().length > 0
  }

  /** The offers no worker has claimed, oldest first. */
  #unclaimed(): BootOffer[] {
    const claims = this.#memory.bootClaims
    return [...this.#offers.values()].filter((offer) => Atomics.load(claims, offer.claim) === 0)
  }

  /** Posts `offer` to `record`'s start through its boot gate, if the gate is still open. */
  #offerTo(record: LoopRecord, offer: BootOffer): void {
    const gates = this.#memory.boot
    if (Atomics.compareExchange(gates, record.index, BOOT_OPEN, BOOT_HANDING) !== BOOT_OPEN) return
    const { task, claim } = offer
    try {
      record.side.postMessage({ boot: task.id, claim, key: task.key, bytes: task.bytes, data: task.data } satisfies BootTask)
      record.offers.add(claim)
      offer.pending++
    } catch {
      // not offered there
    }
    Atomics.store(gates, record.index, BOOT_OPEN)
    Atomics.notify(gates, record.index)
  }

  /**
   * Takes back the offers no worker has claimed (a loop runs, or the pool is closing): each
   * goes to the port, in order, ahead of the tasks held meanwhile. A worker that still holds
   * one fails to claim it, and sends it back, which changes nothing.
   */
  withdrawOffers(): void {
    if (this.#offers.size === 0) return // (a raw post calls this on every post)
    const claims = this.#memory.bootClaims
    const withdrawn: Task[] = []
    for (const offer of this.#offers.values()) {
      if (Atomics.compareExchange(claims, offer.claim, 0, BOOT_WITHDRAWN) !== 0) continue
      this.#offers.delete(offer.claim)
      withdrawn.push(offer.task)
    }
    for (let i = withdrawn.length - 1; i >= 0; i--) this.#events.bootBack(withdrawn[i]!)
    this.#events.holdEnded()
  }

  /**
   * Boot tasks running, outside `ctx.blocking()`: a task on offer counts as running from the
   * moment it is offered (a worker will take it), as a loop's thread does from its get
   * (pool/worker/boot-task.ts). A claimed task whose loop's phase is not LOOP_BOOT while its
   * loop cell names it is inside `ctx.blocking()`.
   */
  get bootRunning(): number {
    if (!this.#bootTasks) return 0
    const { control, current, perLoop, bootClaims } = this.#memory
    let running = 0
    for (const offer of this.#offers.values()) {
      const loop = Atomics.load(bootClaims, offer.claim) - 1
      const blocking =
        loop >= 0 && Atomics.load(control, LOOP_CELLS + 2 * loop + 1) !== LOOP_BOOT && current[loop * perLoop] === offer.task.id
      if (!blocking) running++
    }
    return running
  }

  /** Piscina's worker threads. */
  get threads(): Worker[] {
    return this.#piscina.threads
  }

  /**
   * Starts loops until `minThreads` run. All of them start at once, as Piscina starts its
   * `minThreads`: a burst of tasks right after the constructor finds the whole pool booting. (Starting
   * the rest only once the first loop ran kept the main thread busy creating workers just when
   * the first result came back, and gained nothing on the first result.)
   */
  ensure(): void {
    const target = this.#options.minThreads
    while (!this.#stopped && this.live < target) {
      if (!this.start()) return
    }
  }


  /** Starts one more loop. `false` if none can start now. */
  start(): boolean {
    if (this.#stopped || this.live >= this.#options.maxThreads) return false
    const index = this.#loops.indexOf(undefined)
    if (index < 0) return false
    const { control } = this.#memory
    const cell = LOOP_CELLS + 2 * index
    Atomics.store(control, cell, 0)
    Atomics.store(control, cell + 1, LOOP_STARTING)
    Atomics.store(this.#memory.boot, index, BOOT_OPEN)
    clearLoop(this.#memory, index)
    Atomics.add(control, LIVE_LOOPS, 1)
    const { port1, port2 } = new MessageChannel()
    const record: LoopRecord = {
      index,
      side: port1,
      abort: new AbortController(),
      thread: 0,
      failure: undefined,
      offers: new Set(),
    }
    this.#loops[index] = record
    // The offers no worker has taken yet are this loop's too: it may be up first.
    if (this.takesBootTasks) for (const offer of this.#unclaimed()) this.#offerTo(record, offer)
    port1.on('message', (message: number | SideResult | BootAnswer) => this.#onSide(record, message))
    port1.unref()
    const o = this.#options
    const init: LoopInit & { [tag: symbol]: StartTag } = {
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
      // For our load balancer (a symbol key: not cloned to the worker).
      [PISCINA_QUEUE_OPTIONS]: { loop: index },
    }
    let started: Promise<StartResult>
    try {
      started = this.#piscina.run(init, { transferList: [port2], signal: record.abort.signal }) as Promise<StartResult>
    } catch (error) {
      // Piscina could not even create the worker's thread.
      port2.close()
      this.#scan()
      this.#startFailed(record, 0, -1, error)
      return false
    }
    this.#scan()
    started.then(
      (result) => this.#onStarted(record, result),
      (error: unknown) => this.#onStartThrew(record, error),
    )
    return true
  }

  /**
   * Ends the worker thread of loop `loop` now (`worker.terminate()`), for a task that outlived
   * its abort. Its exit then goes through {@link WorkerEvents.exit} as any death does: its held
   * packets are recovered and a replacement starts. `false` if that loop has no live thread.
   * The thread must be running JavaScript (a thread blocked in a port's native `get()` cannot
   * be terminated), which a task's own code always is.
   */
  terminate(loop: number): boolean {
    const record = this.#loops[loop]
    if (record === undefined || record.thread === 0) return false
    const watched = this.#watched.get(record.thread)
    if (watched === undefined) return false
    void watched.worker.terminate()
    return true
  }

  /** No more loops start (the pool is closing); the starts still waiting for a worker are taken back. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    for (const record of this.#loops) {
      if (record !== undefined && record.thread === 0) this.#takeBack(record)
    }
    this.withdrawOffers()
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
   * Ends every worker (Piscina terminates them) and resolves once every worker thread the pool
   * ever had has exited. The loops must be out of the port's `get()` first (the ports closed):
   * a thread blocked in native code cannot be terminated. Once.
   */
  end(): Promise<void> {
    this.stop()
    this.#ended ??= this.#piscina.destroy().then(async () => {
      // Piscina waits for the workers it still had; a worker it had already let go of (one
      // that crashed, or left as idle) may still be on its way out.
      await Promise.all(Array.from(this.#watched.values(), (watched) => watched.exited))
      for (const record of this.#loops) if (record !== undefined) this.#endLoop(record)
    })
    return this.#ended
  }

  /** Piscina's load balancer: each start goes to a worker that has never had one. */
  readonly #balance = (task: Record<symbol, unknown>, workers: BalancedWorker[]): BalancedWorker | null => {
    const tag = task[PISCINA_QUEUE_OPTIONS] as StartTag | null | undefined
    const record = tag == null ? undefined : this.#loops[tag.loop]
    if (record === undefined || record.thread !== 0) return null
    for (const worker of workers) {
      if (worker.currentUsage !== 0 || worker.terminating || worker.destroyed || this.#assigned.has(worker.id)) {
        continue
      }
      this.#assigned.add(worker.id)
      record.thread = worker.id
      Atomics.store(this.#memory.control, LOOP_CELLS + 2 * record.index, worker.id)
      return worker
    }
    return null
  }

  /** A message on a loop's side channel (see protocol.ts). */
  #onSide(record: LoopRecord, message: number | SideResult | BootAnswer): void {
    if (typeof message === 'number') this.#events.side(record.side, message)
    else if (isBootAnswer(message)) this.#onBootAnswer(record, message)
    else this.#events.sideResult(message.id, message.result)
  }

  #onBootAnswer(record: LoopRecord, answer: BootAnswer): void {
    const offer = record.offers.has(answer.claim) ? this.#offers.get(answer.claim) : undefined
    if (offer === undefined) {
      record.offers.delete(answer.claim) // a withdrawn offer, sent back
    } else if ('back' in answer) {
      this.#offerDone(record, offer, false)
    } else {
      record.offers.delete(offer.claim)
      this.#offers.delete(offer.claim)
      offer.task.data = undefined
      this.#events.bootResult(answer.key, answer.bytes, answer.boot, answer.data)
    }
    this.#events.holdEnded()
  }

  /**
   * Loop `record` is done with `offer` without an answer of its result: it sent it back, or it
   * ended. `ran`: its thread took the task (its loop cell names it), and its exit fails it. An
   * offer that no loop took and none may still take goes to the port (or, aborted meanwhile,
   * frees its slot); one this loop claimed and never ran goes there too.
   */
  #offerDone(record: LoopRecord, offer: BootOffer, ran: boolean): void {
    if (!record.offers.delete(offer.claim)) return
    offer.pending--
    if (!this.#offers.has(offer.claim)) return
    const claimedBy = Atomics.load(this.#memory.bootClaims, offer.claim) - 1
    if (claimedBy === record.index || (claimedBy < 0 && offer.pending === 0)) {
      this.#offers.delete(offer.claim)
      if (!ran) this.#events.bootBack(offer.task)
      this.#events.holdEnded()
    }
  }

  /** Follows every Piscina worker not followed yet: its uncaught error, and its exit. */
  #scan(): void {
    for (const worker of this.#piscina.threads) {
      const threadId = worker.threadId
      if (threadId < 0 || this.#watched.has(threadId)) continue
      let exited!: () => void
      const watched: Watched = {
        worker,
        threadId,
        error: undefined,
        exited: new Promise<void>((resolve) => {
          exited = resolve
        }),
      }
      this.#watched.set(threadId, watched)
      worker.on('error', (error: unknown) => {
        watched.error = error
      })
      worker.once('exit', (code: number) => {
        this.#watched.delete(threadId)
        exited()
        this.#onExit(watched, code)
      })
    }
  }

  #onExit(watched: Watched, exitCode: number): void {
    const { threadId } = watched
    this.#assigned.delete(threadId)
    // Piscina, which heard of the exit first, may have started a worker in its place.
    this.#scan()
    let record: LoopRecord | undefined
    for (const r of this.#loops) if (r !== undefined && r.thread === threadId) record = r
    if (record === undefined) {
      // A worker without a loop: it may have been the one a waiting start was meant for.
      this.#rescueStarts(threadId, exitCode, watched.error)
      return
    }
    const { control } = this.#memory
    const phase = Atomics.load(control, LOOP_CELLS + 2 * record.index + 1)
    const running = runningIn(this.#memory, record.index)
    if (phase === LOOP_STARTING && running.length === 0) {
      // Died (or was ended, its module having failed to load) before its loop ran: it held nothing.
      this.#startFailed(record, threadId, exitCode, record.failure ?? watched.error)
      return
    }
    // (A thread that dies running its boot task, before its loop, dies as a loop does.)
    let died = false
    if (phase !== LOOP_IDLE_EXIT) {
      // An idle loop left the live count itself; any other end is counted here.
      Atomics.sub(control, LIVE_LOOPS, 1)
      if (phase !== LOOP_ENDED) died = true
    }
    this.#endLoop(record)
    this.#events.exit(threadId, exitCode, watched.error, running, died)
  }

  /**
   * A worker that never took a start is gone (`threadId`; `exitCode` if it exited, undefined
   * if Piscina dropped it; `cause` its uncaught error). Piscina hands a waiting start only to a
   * worker that is still booting, and starts no other for it: the starts beyond those workers
   * would wait forever. Take them back, each a failed start.
   */
  #rescueStarts(threadId: number, exitCode: number | undefined, cause: unknown): void {
    if (this.#stopped) return
    const waiting: LoopRecord[] = []
    for (const record of this.#loops) if (record !== undefined && record.thread === 0) waiting.push(record)
    if (waiting.length === 0) return
    let booting = 0
    for (const worker of this.#piscina.threads) {
      if (worker.threadId >= 0 && worker.threadId !== threadId && !this.#assigned.has(worker.threadId)) booting++
    }
    for (let i = booting; i < waiting.length && !this.#stopped; i++) {
      const record = waiting[i]!
      if (this.#loops[record.index] !== record || record.thread !== 0) continue
      record.abort.abort()
      this.#startFailed(record, threadId, exitCode ?? -1, cause)
    }
  }

  /** A start answered: its loop runs, or the task module failed to load in its worker. */
  #onStarted(record: LoopRecord, result: StartResult): void {
    if (typeof result === 'number') {
      this.#failures = 0
      if (!this.#booted) {
        this.#booted = true
        this.withdrawOffers()
      }
      return
    }
    record.failure = PoolErrors.moduleFailed(this.#options.filename, decodeError(result.error))
    const watched = this.#watched.get(record.thread)
    if (watched !== undefined) {
      // Its exit counts the failed start (#onExit).
      void watched.worker.terminate()
    } else if (this.#loops[record.index] === record) {
      this.#startFailed(record, record.thread, -1, record.failure)
    }
  }

  /**
   * A start rejected. Mostly its worker died (Piscina rejects the start from the thread's
   * `exit`, whose handling here, #onExit, has already run) or the start was taken back; but if
   * its thread still runs, the start itself threw (the worker could not load @iocp/core's
   * bundle): end the thread, whose exit counts the failed start, with this error as its cause.
   */
  #onStartThrew(record: LoopRecord, error: unknown): void {
    if (record.abort.signal.aborted || this.#loops[record.index] !== record) return
    const watched = this.#watched.get(record.thread)
    if (watched === undefined) return
    watched.error ??= error
    void watched.worker.terminate()
  }

  /**
   * A loop could not start (`threadId` 0 if no worker took it). It leaves the pool; another
   * replaces it, or, after {@link MAX_START_FAILURES} failed starts in a row, the pool fails.
   */
  #startFailed(record: LoopRecord, threadId: number, exitCode: number, cause: unknown): void {
    this.#dropLoop(record)
    if (this.#stopped) return
    this.#failures++
    const final = this.#failures >= MAX_START_FAILURES
    const error =
      record.failure ?? PoolErrors.startFailed(threadId, exitCode, cause, final ? this.#failures : 0)
    if (final) {
      this.stop()
      this.#events.startFailed(error, true)
      return
    }
    this.#events.startFailed(error, false)
    this.ensure()
  }

  /** Takes back a start still waiting in Piscina's queue. */
  #takeBack(record: LoopRecord): void {
    record.abort.abort()
    this.#dropLoop(record)
  }

  /** A loop that never ran leaves the pool. */
  #dropLoop(record: LoopRecord): void {
    if (this.#loops[record.index] !== record) return
    Atomics.sub(this.#memory.control, LIVE_LOOPS, 1)
    this.#endLoop(record)
  }

  #endLoop(record: LoopRecord): void {
    const control = this.#memory.control
    const phase = LOOP_CELLS + 2 * record.index + 1
    if (Atomics.load(control, phase) !== LOOP_IDLE_EXIT) Atomics.store(control, phase, LOOP_ENDED)
    Atomics.notify(control, phase)
    // What the thread sent before it went (a boot task's answer, a result by postMessage) is
    // handled before the channel closes, which would drop it.
    for (let got = receiveMessageOnPort(record.side); got !== undefined; got = receiveMessageOnPort(record.side)) {
      this.#onSide(record, got.message as number | SideResult | BootAnswer)
    }
    // Offers unanswered. A task its thread took (its loop cell names it, even if the thread
    // died before it ran it, as for a loop's task) is failed by the thread's exit
    // (WorkerEvents.exit); the others go back, unless another loop may still take them.
    const running = runningIn(this.#memory, record.index)
    for (const claim of [...record.offers]) {
      const offer = this.#offers.get(claim)
      if (offer === undefined) record.offers.delete(claim)
      else this.#offerDone(record, offer, running.includes(offer.task.id))
    }
    record.side.close()
    if (this.#loops[record.index] === record) this.#loops[record.index] = undefined
  }
}
