/**
 * The worker entry of a PortPool: the file Piscina loads in every worker of the pool.
 *
 * Protocol (the rest is in pool/shared/protocol.ts, pool/shared/codec.ts and pool/shared/memory.ts):
 *
 * - Piscina calls the default export, `start(init)`, once per worker. It writes the thread's id
 *   into the loop's cell, imports the task module, opens the pool's two ports and answers; the
 *   loop starts on the next turn of the event loop, after Piscina has sent that answer. So the
 *   main thread learns from the answer that the loop runs, or why it cannot (the module failed
 *   to load: the answer carries the error, and the main thread ends this worker).
 * - The loop takes one packet at a time from the task port with `get()`. A task packet runs the
 *   task and posts its outcome to the results port (key: encoding, overlapped: the task id); a
 *   task that was aborted while queued is skipped, with a SKIPPED packet so that the main thread
 *   frees its slot. Any other packet is a raw packet for the module's `onPacket`.
 *
 * Why it blocks: the loop *is* the IOCP thread of Windows' thread-pool I/O. Blocked in `get()`,
 * the worker is one of the port's waiters, so the port decides which worker runs (the most
 * recent waiter, LIFO) and how many run at once (its concurrency): a worker that took a packet
 * counts as running until its next `get()`, and one that finishes takes the next packet itself,
 * without a context switch. So the pool keeps no queue, no scheduler and no per-task message of
 * its own. Only when the port has nothing for it does a worker return to its event loop, once,
 * before it blocks (microtasks, timers and pending messages run then).
 *
 * An async task keeps its worker, and its place under the concurrency limit, until it settles:
 * the worker awaits it and runs its event loop meanwhile, as a Windows pool thread would while
 * it waits inside a callback. Awaits wrapped in `ctx.blocking()` do not count.
 *
 * With `concurrentTasksPerWorker` k > 1 (Piscina's option), a worker whose async task is
 * awaiting takes more tasks, up to k of its own in flight, so that their awaits interleave.
 * While it has tasks awaiting it cannot block in `get()` (their callbacks run on its event
 * loop): it waits for the next packet with `getAsync()` instead, and, when it has k in flight,
 * waits for one of them inside `blocking()`. Either way it does not count as running on the
 * port while it only awaits: the port's concurrency bounds the workers running JavaScript at
 * once, k bounds the tasks each worker holds. Once its last task settles, it goes back to the
 * blocking `get()` (and to the LIFO order of the port's waiters).
 */
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { parentPort, threadId, type MessagePort } from 'node:worker_threads'
import { CompletionPort } from '../../port/completion-port.js'
import { PortClosedError } from '../../errors.js'
import type { Packet } from '../../port/packet.js'
import { isThenable } from '../../shared.js'
import { PoolErrors } from '../shared/errors.js'
import {
  ASYNC,
  LIVE_LOOPS,
  LOOP_CELLS,
  LOOP_ENDED,
  LOOP_IDLE_EXIT,
  LOOP_RUNNING,
  QUEUED,
  RUNNING,
  SLOTS,
  nameAt,
  type PoolMemory,
} from '../shared/memory.js'
import { REPORT, type LoopInit, type SideReply, type StartResult, type WorkerReport } from '../shared/protocol.js'
import {
  ENC_SIDE,
  TASK_BASE,
  decodeError,
  decodeValue,
  encodeError,
  encoded,
  hiOf,
  isTaskKey,
  tagOf,
} from '../shared/codec.js'
import { shareWorkerCodeCacheOnce } from '../shared/code-cache.js'
import { SKIPPED_KEY, answerOf, flushStdio, stdioPending } from './answer.js'
import { PacketScope, TaskScope } from './task-context.js'
import { PACKET_HANDLER, findFunction, loadTaskModule, type TaskFunction, type TaskModule } from './task-module.js'


/**
 * Piscina's task: loads the task module, opens the ports and starts this worker's loop (on the
 * next turn, once Piscina has sent the answer). Answers the thread's id, or the error of a task
 * module that failed to load (no loop starts then; the main thread ends this worker).
 * @param init - see {@link LoopInit}.
 */
export default async function start(init: LoopInit): Promise<StartResult> {
  const control = init.memory.control
  const phase = LOOP_CELLS + 2 * init.loop + 1
  const setPhase = (value: number): void => {
    Atomics.store(control, phase, value)
    Atomics.notify(control, phase)
  }
  Atomics.store(control, LOOP_CELLS + 2 * init.loop, threadId)

  let module: TaskModule
  try {
    module = await loadTaskModule(init.filename)
  } catch (error) {
    return { error: encodeError(error) }
  }
  let tasks: CompletionPort
  let results: CompletionPort
  try {
    tasks = CompletionPort.fromHandle(init.tasks)
    results = CompletionPort.fromHandle(init.results)
  } catch {
    // The pool closed before this loop started.
    setPhase(LOOP_ENDED)
    return threadId
  }
  setPhase(LOOP_RUNNING)
  setImmediate(() => {
    void runLoop(new Loop(init, module, tasks, results), setPhase)
  })
  return threadId
}

function report(message: WorkerReport): void {
  parentPort?.postMessage(message)
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

async function runLoop(loop: Loop, setPhase: (value: number) => void): Promise<void> {
  const ending = await loop.run()
  if (ending === 'idle') {
    // Above minThreads and idle: this worker leaves the pool (Piscina sees it exit and forgets
    // it). The loop already left the live count.
    setPhase(LOOP_IDLE_EXIT)
    process.exit(0)
  }
  setPhase(LOOP_ENDED)
}

/** One worker's loop; see the file comment. */
class Loop {
  readonly #init: LoopInit
  readonly #module: TaskModule
  readonly #tasks: CompletionPort
  readonly #results: CompletionPort
  readonly #memory: PoolMemory
  readonly #state: Int32Array
  readonly #times: Float64Array
  readonly #current: Float64Array
  readonly #loop: number
  readonly #timing: boolean
  /** Adds to this thread's `performance.now()` to get the main thread's. */
  readonly #clockOffset: number
  readonly #side: MessagePort
  readonly #out = encoded()
  /** Task functions by name index: undefined = not looked up yet, null = not exported. */
  readonly #functions: Array<TaskFunction | null | undefined> = []
  readonly #names: string[] = []
  readonly #onPacket: TaskFunction | undefined
  /** concurrentTasksPerWorker: tasks this loop runs at once. */
  readonly #perLoop: number
  /** With #perLoop > 1: the tasks in flight that returned a promise. */
  readonly #awaiting = new Set<Promise<void>>()
  /** Ends the wait of #oneSettled(). */
  #settled: (() => void) | undefined
  /** Aborts the pending getAsync() of #nextWhileAwaiting(). */
  #wake: AbortController | undefined
  /** A task has run here (its functions are compiled: see shareWorkerCodeCacheOnce). */
  #ranTask = false

  constructor(init: LoopInit, module: TaskModule, tasks: CompletionPort, results: CompletionPort) {
    this.#init = init
    this.#module = module
    this.#tasks = tasks
    this.#results = results
    this.#memory = init.memory
    this.#state = init.memory.state
    this.#times = init.memory.times
    this.#current = init.memory.current
    this.#loop = init.loop
    this.#timing = init.recordTiming
    this.#clockOffset = performance.timeOrigin - init.timeOrigin
    this.#side = init.side
    this.#onPacket = findFunction(module, PACKET_HANDLER)
    this.#perLoop = init.memory.perLoop
  }

  /** Runs until the port closes, the worker is being terminated, or it may leave as idle. */
  async run(): Promise<'closed' | 'idle' | 'terminating'> {
    const tasks = this.#tasks
    for (;;) {
      try {
        if (this.#awaiting.size >= this.#perLoop) {
          // Full: wait for one of them to settle, not counted as running on the port.
          await tasks.blocking(() => this.#oneSettled())
          continue
        }
        let packet = tasks.get(0)
        if (packet === null && this.#awaiting.size > 0) {
          packet = await this.#nextWhileAwaiting()
          if (packet === null) continue
        }
        if (packet === null) {
          // Nothing to do: let the event loop run once (microtasks, timers, console output),
          // then wait in the port. Once this worker has run a task, the functions it ran are
          // compiled: the first such worker of the process leaves its code cache for the next.
          if (this.#ranTask) shareWorkerCodeCacheOnce()
          await nextTurn()
          const timeout = this.#idleTimeout()
          packet = tasks.get(timeout)
          if (packet === null) {
            if (timeout === Infinity) return 'terminating'
            if (this.#leaveIdle()) return 'idle'
            continue
          }
        }
        const pending = isTaskKey(packet.key) ? this.#runTask(packet) : this.#runPacket(packet)
        if (pending === undefined) continue
        if (this.#perLoop === 1) await pending
        else this.#track(pending)
      } catch (error) {
        // Only the pool's own ports throw this here (a task's errors are the task's): closed.
        if (error instanceof PortClosedError) return 'closed'
        throw error
      }
    }
  }

  /** Follows a task (or packet) that awaits, while the loop takes more (#perLoop > 1). */
  #track(pending: Promise<void>): void {
    this.#awaiting.add(pending)
    pending
      .catch((error: unknown) => {
        // The results port closed under it: the pool is ending, and the loop will see it too.
        // Anything else is a bug of the loop: let it kill the worker, as in the k = 1 path.
        if (!(error instanceof PortClosedError)) {
          queueMicrotask(() => {
            throw error
          })
        }
      })
      .finally(() => {
        this.#awaiting.delete(pending)
        const settled = this.#settled
        this.#settled = undefined
        settled?.()
        if (this.#awaiting.size === 0) this.#wake?.abort()
      })
  }

  #oneSettled(): Promise<void> {
    return new Promise((resolve) => {
      this.#settled = resolve
    })
  }

  /**
   * The next packet, waited for without blocking the thread (its awaiting tasks run meanwhile);
   * `null` once the last of them has settled (the loop goes back to its blocking `get()`). A
   * packet on its way to the aborted wait goes back to the head of the port's queue.
   */
  async #nextWhileAwaiting(): Promise<Packet | null> {
    const controller = (this.#wake = new AbortController())
    try {
      return await this.#tasks.getAsync({ signal: controller.signal })
    } catch (error) {
      if (controller.signal.aborted) return null
      throw error
    } finally {
      this.#wake = undefined
    }
  }

  #idleTimeout(): number {
    const { idleTimeout, minThreads } = this.#init
    if (idleTimeout === Infinity) return Infinity
    return Atomics.load(this.#memory.control, LIVE_LOOPS) > minThreads ? idleTimeout : Infinity
  }

  /** Leaves the live count if it stays at or above minThreads without this loop. */
  #leaveIdle(): boolean {
    const control = this.#memory.control
    const { minThreads } = this.#init
    for (;;) {
      const live = Atomics.load(control, LIVE_LOOPS)
      if (live <= minThreads) return false
      if (Atomics.compareExchange(control, LIVE_LOOPS, live, live - 1) === live) return true
    }
  }

  // --- tasks -------------------------------------------------------------------------------

  #runTask(packet: Packet): Promise<void> | undefined {
    const id = packet.overlapped as number
    const slot = id % SLOTS
    // The cell first: whenever the main thread sees the task started, it finds its loop.
    this.#claimCell(id)
    if (Atomics.compareExchange(this.#state, slot, QUEUED, RUNNING) !== QUEUED) {
      // Aborted while queued: never run; the slot is the main thread's again.
      this.#releaseCell(id)
      this.#results.post(SKIPPED_KEY, 0, id)
      return undefined
    }
    this.#ranTask = true
    const started = this.#timing ? performance.now() : 0
    const relative = (packet.key as number) - TASK_BASE
    const tag = tagOf(relative)
    const enc = tag & 15
    const nameIndex = tag >>> 4
    if (enc === ENC_SIDE) return this.#runSide(id, slot, nameIndex, started)
    let payload: unknown
    try {
      payload = decodeValue(enc, hiOf(relative, tag), packet.bytes, packet.data)
    } catch (error) {
      return this.#finish(id, slot, started, false, error)
    }
    return this.#invoke(id, slot, nameIndex, started, payload)
  }

  /** The payload waits in the main thread (it holds transferables): fetch it, then run. */
  async #runSide(id: number, slot: number, nameIndex: number, started: number): Promise<void> {
    const side = this.#side
    side.postMessage(id)
    const [reply] = (await this.#tasks.blocking(() => once(side, 'message'))) as [SideReply]
    if ('error' in reply) {
      const pending = this.#finish(id, slot, started, false, decodeError(reply.error))
      if (pending !== undefined) await pending
      return
    }
    const pending = this.#invoke(id, slot, nameIndex, started, reply.payload)
    if (pending !== undefined) await pending
  }

  #invoke(id: number, slot: number, nameIndex: number, started: number, payload: unknown): Promise<void> | undefined {
    let ctx: TaskScope | undefined
    let result: unknown
    try {
      const fn = this.#function(nameIndex)
      ctx = new TaskScope(this.#tasks, threadId, this.#state, slot, this.#names[nameIndex]!)
      result = fn(payload, ctx)
    } catch (error) {
      ctx?.end()
      return this.#finish(id, slot, started, false, error)
    }
    if (isThenable(result)) return this.#settle(id, slot, started, ctx, result)
    ctx.end()
    return this.#finish(id, slot, started, true, result)
  }

  /** An async task: its worker awaits it (holding its place on the port) and then answers. */
  async #settle(id: number, slot: number, started: number, ctx: TaskScope, result: PromiseLike<unknown>): Promise<void> {
    ctx.enterAsync(Atomics.compareExchange(this.#state, slot, RUNNING, ASYNC) === RUNNING)
    let ok = true
    let value: unknown
    try {
      value = await result
    } catch (error) {
      ok = false
      value = error
    }
    ctx.end()
    const pending = this.#finish(id, slot, started, ok, value)
    if (pending !== undefined) await pending
  }

  #function(nameIndex: number): TaskFunction {
    let fn = this.#functions[nameIndex]
    if (fn === undefined) {
      const name = nameIndex === 0 ? this.#init.defaultName : nameAt(this.#memory, nameIndex)
      this.#names[nameIndex] = name
      fn = this.#functions[nameIndex] = findFunction(this.#module, name) ?? null
    }
    if (fn === null) throw PoolErrors.noTask(this.#init.filename, this.#names[nameIndex]!)
    return fn
  }

  /** Records the timing and answers (once the task's console output is on its way: answer.ts). */
  #finish(id: number, slot: number, started: number, ok: boolean, value: unknown): Promise<void> | undefined {
    if (this.#timing) {
      const times = this.#times
      times[2 * slot] = started + this.#clockOffset
      times[2 * slot + 1] = performance.now() - started
    }
    if (stdioPending()) {
      return flushStdio().then(() => this.#answer(id, ok, value))
    }
    this.#answer(id, ok, value)
    return undefined
  }

  #answer(id: number, ok: boolean, value: unknown): void {
    const { key, bytes, data } = answerOf(id, ok, value, this.#out, this.#side)
    this.#results.post(key, bytes, id, data)
    this.#releaseCell(id)
  }

  /** Records task `id` in one of this loop's task cells (pool/shared/memory.ts). */
  #claimCell(id: number): void {
    const current = this.#current
    for (let i = this.#loop * this.#perLoop, end = i + this.#perLoop; i < end; i++) {
      if (current[i] === 0) {
        current[i] = id
        return
      }
    }
  }

  #releaseCell(id: number): void {
    const current = this.#current
    for (let i = this.#loop * this.#perLoop, end = i + this.#perLoop; i < end; i++) {
      if (current[i] === id) {
        current[i] = 0
        return
      }
    }
  }

  // --- raw packets ---------------------------------------------------------------------------

  #runPacket(packet: Packet): Promise<void> | undefined {
    const handler = this.#onPacket
    if (handler === undefined) {
      reportPacket(packet, PoolErrors.noPacketHandler(this.#init.filename))
      return undefined
    }
    let result: unknown
    try {
      result = handler(packet, new PacketScope(this.#tasks, threadId))
    } catch (error) {
      reportPacket(packet, error)
      return undefined
    }
    if (!isThenable(result)) return undefined
    return Promise.resolve(result).then(
      () => undefined,
      (error: unknown) => reportPacket(packet, error),
    )
  }
}

function reportPacket(packet: Packet, error: unknown): void {
  report({
    [REPORT]: 'packetError',
    key: packet.key,
    bytes: packet.bytes,
    overlapped: packet.overlapped,
    error: encodeError(error),
  })
}
