/**
 * The main thread's record of the tasks in flight: one per task slot (pool/shared/memory.ts), plus a
 * FIFO of tasks waiting for a slot when all {@link SLOTS} are taken. A task keeps its slot from
 * its post until its last packet is back: its result, its skip notice, or its recovery from a
 * dead worker. Its id, `generation * SLOTS + slot`, travels as the packet's `overlapped` value.
 *
 * Main thread only; no locking.
 */
import { noop } from '../../shared.js'
import { ABORTED, ASYNC, QUEUED, RUNNING, SLOTS } from '../shared/memory.js'

/** A payload that must travel over a loop's side channel (it holds transferables). */
export interface SidePayload {
  readonly payload: unknown
  readonly transferList: ReadonlyArray<unknown>
}

/** One `run()`, from submission until its last packet is back. */
export class Task {
  /** `generation * SLOTS + slot` once it holds a slot; -1 while it waits for one. */
  id = -1
  resolve: (value: unknown) => void = noop
  reject: (reason: unknown) => void = noop
  /** The promise is settled (result, error, abort, or the pool ended it). */
  settled = false
  /** Aborted while waiting for a slot: it left the table already. */
  dropped = false
  signal: AbortSignal | undefined = undefined
  onAbort: (() => void) | undefined = undefined
  /** `performance.now()` at `run()`, for the wait-time histogram. */
  createdAt = 0
  /** The encoded packet: key, bytes and payload. */
  key = 0
  bytes = 0
  data: Uint8Array | undefined = undefined
  side: SidePayload | undefined = undefined

  /** Marks the task settled and removes its abort listener. Call before resolve / reject. */
  settle(): void {
    this.settled = true
    if (this.onAbort !== undefined) {
      this.signal!.removeEventListener('abort', this.onAbort)
      this.onAbort = undefined
    }
  }
}

/** The slot of a task id. */
export function slotOf(id: number): number {
  return id % SLOTS
}

export class TaskTable {
  readonly #state: Int32Array
  /** By slot; it grows as slots are first used (#fresh), so a new pool fills no 64 Ki entries. */
  readonly #slots: Array<Task | undefined> = []
  readonly #generations = new Float64Array(SLOTS)
  /** A stack of released slots: #free[0 .. #freeTop), reused first (the last released on top). */
  readonly #free = new Int32Array(SLOTS)
  #freeTop = 0
  /** Slots never used yet: #fresh .. SLOTS. */
  #fresh = 0
  /** Tasks waiting for a slot: #waiting[#head ..]. */
  #waiting: Task[] = []
  #head = 0
  #inFlight = 0

  /** @param state - the slots' abort cells, shared with the workers. */
  constructor(state: Int32Array) {
    this.#state = state
  }

  /** Tasks admitted and not yet taken back (in a slot, or waiting for one). */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length - this.#head
  }

  /**
   * Admits `task`. Returns `true` if it got a slot (its id is set: post it now), `false` if it
   * waits for one, behind the tasks already waiting (FIFO).
   */
  admit(task: Task): boolean {
    this.#inFlight++
    if (this.#head === this.#waiting.length && this.#hasFreeSlot()) {
      this.#assign(task)
      return true
    }
    this.#waiting.push(task)
    return false
  }

  /** The next waiting task, given the slot that has become free; `undefined` if none can go. */
  next(): Task | undefined {
    while (this.#head < this.#waiting.length && this.#hasFreeSlot()) {
      const task = this.#waiting[this.#head]!
      this.#waiting[this.#head++] = undefined as never
      if (task.dropped) continue
      this.#assign(task)
      this.#compact()
      return task
    }
    this.#compact()
    return undefined
  }

  /** Takes back the task whose id is `id` (its slot becomes free); `undefined` if it is not in flight. */
  take(id: number): Task | undefined {
    const slot = slotOf(id)
    const task = this.#slots[slot]
    if (task === undefined || task.id !== id) return undefined
    this.#release(slot)
    return task
  }

  /** The task whose id is `id`, if in flight (it keeps its slot). */
  peek(id: number): Task | undefined {
    const task = this.#slots[slotOf(id)]
    return task !== undefined && task.id === id ? task : undefined
  }

  /**
   * Cancels `task`'s run. Waiting for a slot: it leaves the table and never reaches the port.
   * In a slot: QUEUED -> ABORTED (the worker that dequeues it skips it), or RUNNING / ASYNC ->
   * ABORTED and a notify (the task sees it through its ctx); the slot stays taken until the
   * task's last packet is back. Returns `true` if the task had started (it was RUNNING or ASYNC).
   */
  abort(task: Task): boolean {
    if (task.id < 0) {
      task.dropped = true
      task.data = undefined
      task.side = undefined
      this.#inFlight--
      return false
    }
    const state = this.#state
    const slot = slotOf(task.id)
    for (;;) {
      const current = Atomics.load(state, slot)
      if (current !== QUEUED && current !== RUNNING && current !== ASYNC) return false
      if (Atomics.compareExchange(state, slot, current, ABORTED) === current) {
        if (current !== QUEUED) Atomics.notify(state, slot)
        return current !== QUEUED
      }
    }
  }

  /**
   * Takes back every task that has not started: those waiting for a slot leave the table, and
   * those queued in the port are marked ABORTED (the worker that dequeues one skips it). Returns
   * them, unsettled; the running ones are left alone.
   */
  abortQueued(): Task[] {
    const taken: Task[] = []
    for (let i = this.#head; i < this.#waiting.length; i++) {
      const task = this.#waiting[i]!
      if (task.dropped || task.settled) continue
      this.abort(task)
      taken.push(task)
    }
    const state = this.#state
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const task = this.#slots[slot]
      if (task === undefined || task.settled) continue
      if (Atomics.compareExchange(state, slot, QUEUED, ABORTED) === QUEUED) taken.push(task)
    }
    return taken
  }

  /** Empties the table and returns every task it held (settled ones included). */
  clear(): Task[] {
    const tasks: Task[] = []
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const task = this.#slots[slot]
      if (task === undefined) continue
      // A task not started never starts now: a boot task on its way to a worker (which the
      // closed port does not stop) finds it aborted and skips it.
      Atomics.compareExchange(this.#state, slot, QUEUED, ABORTED)
      this.#release(slot)
      tasks.push(task)
    }
    for (let i = this.#head; i < this.#waiting.length; i++) {
      const task = this.#waiting[i]!
      if (task.dropped) continue
      this.#inFlight--
      tasks.push(task)
    }
    this.#waiting = []
    this.#head = 0
    return tasks
  }

  #hasFreeSlot(): boolean {
    return this.#freeTop > 0 || this.#fresh < SLOTS
  }

  #assign(task: Task): void {
    let slot: number
    if (this.#freeTop > 0) slot = this.#free[--this.#freeTop]!
    else {
      slot = this.#fresh++
      this.#slots.push(undefined)
    }
    task.id = ++this.#generations[slot]! * SLOTS + slot
    this.#slots[slot] = task
    this.#state[slot] = QUEUED
  }

  #release(slot: number): void {
    this.#slots[slot] = undefined
    this.#free[this.#freeTop++] = slot
    this.#inFlight--
  }

  #compact(): void {
    if (this.#head === this.#waiting.length) {
      if (this.#head > 0) {
        this.#waiting = []
        this.#head = 0
      }
    } else if (this.#head > 4096 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head)
      this.#head = 0
    }
  }
}
