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
 * While the pool boots, the outbox holds its tasks (`hold`, see pool/main/workers.ts): a start
 * about to be sent takes the oldest as its boot task ({@link TaskOutbox.takeFirst}), and the rest
 * are posted once the hold ends.
 */
import type { CompletionPort } from '../../port/completion-port.js'
import { PacketBatch } from '../../port/batch.js'
import type { Task } from './task-table.js'

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
  /** Whether the tasks wait here for now (the pool is booting). */
  readonly #hold: () => boolean

  constructor(port: CompletionPort, onFailed: (task: Task, error: unknown) => void, hold: () => boolean) {
    this.#port = port
    this.#onFailed = onFailed
    this.#hold = hold
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

  /**
   * Forgets the tasks not posted yet, for a pool that is ending: they stay in the task table,
   * whose end rejects them.
   */
  discard(): void {
    this.#tasks = []
  }

  /** The oldest task not posted yet, if any. */
  get first(): Task | undefined {
    return this.#tasks[0]
  }

  /** Takes out the oldest task not posted yet (a boot task), if any. */
  takeFirst(): Task | undefined {
    return this.#tasks.shift()
  }

  /**
   * Puts back, ahead of the tasks still here, a boot task that did not run (its worker died
   * first, or could not load the module). Tasks already posted stay ahead of it.
   */
  putBack(task: Task): void {
    this.#tasks.unshift(task)
    this.#schedule()
  }

  /** Schedules a flush for the end of this turn (a hold may have ended). */
  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flushSoon)
    }
  }

  /**
   * Posts every task added so far, in order. A task whose post fails is handed to `onFailed`.
   * While the pool holds its tasks, nothing is posted, unless `force` (a raw post must come
   * after the tasks submitted before it; closing posts everything).
   */
  flush(force = false): void {
    const tasks = this.#tasks
    if (tasks.length === 0 || (!force && this.#hold())) return
    this.#tasks = []
    const batch = this.#batch
    for (let start = 0; start < tasks.length; start += BATCH) {
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
