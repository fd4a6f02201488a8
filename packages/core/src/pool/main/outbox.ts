/**
 * The outbox: the task packets that `run()` admits during one turn of the main thread, posted
 * together with one `postMany()` when the turn's microtasks run, in the order they were admitted.
 *
 * Why: a pool's tasks come in bursts (a batch of results settles, and each `.then` submits the
 * next task), and its workers are quick: posted one by one, nearly every task found the queue
 * empty and a worker waiting, so each `post()` went into native code to hand the packet over and
 * wake that worker. A burst posted at once costs one native call, wakes each waiting worker at
 * most once, and queues the rest where the woken workers take them without native code.
 *
 * Anything that must see the port in submission order (a raw `pool.post()`, closing) calls
 * {@link TaskOutbox.flush} first; counts of queued work add {@link TaskOutbox.size}.
 *
 * While the pool boots, a flush first offers its oldest tasks, in order, to the starting workers
 * as their boot tasks (see pool/main/workers.ts); the first one refused and every later one
 * wait here while an offer is unclaimed (no later task may go ahead of it), then go to the port,
 * behind the offers that no worker took (put back at the head).
 */
import type { CompletionPort } from '../../port/completion-port.js'
import { PacketBatch } from '../../port/batch.js'
import type { Task } from './task-table.js'

/** The boot offers, as the outbox sees them (pool/main/workers.ts). */
export interface BootOffers {
  /** Offers a task to the starting workers as a boot task; `false` if it is not offered. */
  offer(task: Task): boolean
  /** Whether an offer is unclaimed: later tasks must wait. */
  holds(): boolean
  /** Takes back the unclaimed offers: they are put back here, at the head. */
  withdraw(): void
}

/** Packets per `postMany()`; a larger burst takes several. */
const BATCH = 256

export class TaskOutbox {
  readonly #port: CompletionPort
  readonly #batch = new PacketBatch(BATCH)
  /** Admitted, not posted yet, in admission order. */
  #tasks: Task[] = []
  /** A flush is scheduled for the end of this turn. */
  #scheduled = false
  readonly #flushSoon = (): void => {
    this.#scheduled = false
    this.flush()
  }
  /** A task whose packet could not be posted: it is rejected with the port's error. */
  readonly #onFailed: (task: Task, error: unknown) => void
  readonly #boot: BootOffers

  constructor(port: CompletionPort, onFailed: (task: Task, error: unknown) => void, boot: BootOffers) {
    this.#port = port
    this.#onFailed = onFailed
    this.#boot = boot
  }

  /** Tasks admitted and not yet posted. */
  get size(): number {
    return this.#tasks.length
  }

  /** Queues the packet of `task` (which holds a slot) for this turn's post. */
  add(task: Task): void {
    this.#tasks.push(task)
    this.#schedule()
  }

  /** The hold may have ended: post what waits, at the end of this turn. */
  release(): void {
    if (this.#tasks.length > 0) this.#schedule()
  }

  /** Puts `task` back at the head: an offer that no worker took, ahead of the tasks held meanwhile. */
  putBack(task: Task): void {
    this.#tasks.unshift(task)
    this.#schedule()
  }

  /**
   * Forgets the tasks not posted yet, for a pool that is ending: they stay in the task table,
   * whose end rejects them.
   */
  discard(): void {
    this.#tasks = []
  }

  /** Schedules a flush for the end of this turn. */
  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flushSoon)
    }
  }

  /**
   * Posts every task added so far, in order, after the oldest ones that are offered to the
   * starting workers as boot tasks; while an offer is unclaimed, the rest wait. `force` (a raw
   * post, which must come after the tasks submitted before it): the offers no worker took are
   * withdrawn first, and everything is posted. A task whose post fails is handed to `onFailed`.
   */
  flush(force = false): void {
    if (force) this.#boot.withdraw()
    const tasks = this.#tasks
    if (tasks.length === 0) return
    let first = 0
    if (!force) {
      while (first < tasks.length && this.#boot.offer(tasks[first]!)) first++
      if (first < tasks.length && this.#boot.holds()) {
        this.#tasks = tasks.slice(first)
        return
      }
    }
    this.#tasks = []
    const batch = this.#batch
    for (let start = first; start < tasks.length; start += BATCH) {
      const end = Math.min(start + BATCH, tasks.length)
      batch.clear()
      for (let i = start; i < end; i++) {
        const task = tasks[i]!
        batch.push(task.key, task.bytes, task.id, task.data)
      }
      let posted = 0
      let failure: unknown
      try {
        posted = this.#port.postMany(batch)
      } catch (error) {
        failure = error
      }
      for (let i = start; i < start + posted; i++) tasks[i]!.data = undefined
      if (posted < end - start) {
        // The port closed (or, with a capacity, filled up): this task and every later one fail
        // as their own post() would have. One post() gives the error its exact kind.
        for (let i = start + posted; i < tasks.length; i++) this.#postOne(tasks[i]!, failure)
        return
      }
    }
  }

  /** Posts one task alone (after a batch stopped short), or fails it with `known`. */
  #postOne(task: Task, known: unknown): void {
    if (known === undefined) {
      try {
        this.#port.post(task.key, task.bytes, task.id, task.data)
        task.data = undefined
        return
      } catch (error) {
        known = error
      }
    }
    this.#onFailed(task, known)
  }
}
