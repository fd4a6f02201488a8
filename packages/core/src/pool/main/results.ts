/**
 * Results: the main thread drains the results port asynchronously, in batches (`getAsync()`,
 * then everything already there with `getManyInto(…, 0)`), while tasks are in flight, and
 * settles each task's promise: with its value (pool/shared/codec.ts), its error, nothing (a
 * task skipped after its abort), or the value that came by postMessage (shared memory).
 */
import { performance } from 'node:perf_hooks'
import { PortClosedError } from '../../errors.js'
import { PacketBatch } from '../../port/batch.js'
import type { Packet } from '../../port/packet.js'
import { ENC_ERROR, ENC_SIDE, ENC_SKIPPED, decodeError, decodeValue, hiOf, tagOf } from '../shared/codec.js'
import type { PoolState } from './state.js'
import { recordMs } from './stats.js'
import { slotOf } from './task-table.js'

/** Packets taken per `getManyInto` when the results port is drained. */
const BATCH = 256
/**
 * Results handled per step while they keep coming (see #drain): few enough that the tasks their
 * callbacks submit reach the workers while the rest are still being handled.
 */
const STEP = 32
/** The longest the drain keeps the main thread before it lets the event loop turn. */
const STREAK_MS = 2

export class Results {
  readonly #state: PoolState
  readonly #batch = new PacketBatch(BATCH)
  readonly #step = new PacketBatch(STEP)
  #draining = false
  /** The drain broke (a bug, or the native layer failed): the pool must fail with it. */
  readonly #onBroken: (error: Error) => void

  constructor(state: PoolState, onBroken: (error: Error) => void) {
    this.#state = state
    this.#onBroken = onBroken
  }

  /** Starts draining if it is not already (a task was just admitted). */
  ensureDraining(): void {
    if (this.#draining) return
    this.#drain().catch((error: unknown) => this.#onBroken(error instanceof Error ? error : new Error(String(error))))
  }

  /** Handles every result already in the results port, without waiting. */
  takeAll(): void {
    while (this.#take(this.#batch) === BATCH) {
      // a full batch: there may be more
    }
  }

  /** A loop sent the result of task `id` by postMessage (see #onResult). */
  onSideResult(id: number, result: unknown): void {
    const state = this.#state
    const task = state.awaitingSide.get(id)
    if (task === undefined) {
      state.sideResults.set(id, result)
      return
    }
    state.awaitingSide.delete(id)
    if (state.awaitingSide.size === 0) state.stopSideKeepAlive()
    task.resolve(result)
  }

  /** A boot task's result packet, which came on its loop's side channel (boot-task.ts). */
  onBootResult(key: number, bytes: number, id: number, data: Uint8Array | undefined): void {
    this.#onResult(key, bytes, id, data)
    // After the task's own callbacks (queued first): a new pool's first result is its boot
    // task's, and this step (the results port's wait, armed for nothing, ends here) would
    // hold it back by a fifth of a millisecond.
    queueMicrotask(this.#afterBootResult)
  }

  readonly #afterBootResult = (): void => this.#state.afterChange()

  /**
   * Takes what fits in `batch` of the results already in the results port, without waiting,
   * and settles their tasks. Returns how many it took (0 once the port is closed).
   */
  #take(batch: PacketBatch): number {
    let count: number
    try {
      count = this.#state.results.getManyInto(batch, 0)
    } catch (error) {
      if (error instanceof PortClosedError) return 0
      throw error
    }
    for (let i = 0; i < count; i++) {
      this.#onResult(batch.key(i) as number, batch.bytes(i), batch.overlapped(i) as number, batch.data(i))
    }
    return count
  }

  /**
   * Drains the results port while tasks are in flight: waits for a result (getAsync), then,
   * while results are there, takes them a step at a time. After each step the microtasks run
   * (the callbacks of the promises it settled, which submit more tasks) and the outbox is
   * posted at once, so the workers get the next tasks while the main thread still has results
   * to handle, rather than a burst of results first and then a burst of tasks (during which
   * the other side waits, and must be woken). Every {@link STREAK_MS} the event loop turns.
   */
  async #drain(): Promise<void> {
    const state = this.#state
    this.#draining = true
    try {
      while (state.table.inFlight > 0) {
        let controller = state.drainAbort
        if (controller === undefined || controller.signal.aborted) controller = state.drainAbort = new AbortController()
        let packet: Packet | null
        state.drainWaiting = true
        try {
          packet = await state.results.getAsync({ signal: controller.signal })
        } catch (error) {
          if (controller.signal.aborted) continue
          if (error instanceof PortClosedError) return
          throw error
        } finally {
          state.drainWaiting = false
        }
        if (packet !== null) this.#onResult(packet.key as number, packet.bytes, packet.overlapped as number, packet.data)
        state.afterChange()
        let streak = performance.now()
        for (;;) {
          await null
          state.outbox.flush()
          if (this.#take(this.#step) === 0) break
          state.afterChange()
          if (performance.now() - streak > STREAK_MS) {
            await new Promise((resolve) => setImmediate(resolve))
            streak = performance.now()
          }
        }
      }
    } finally {
      this.#draining = false
    }
  }

  #onResult(key: number, bytes: number, id: number, data: Uint8Array | undefined): void {
    const state = this.#state
    const task = state.table.take(id)
    if (task === undefined || task.settled) return
    task.settle()
    const enc = tagOf(key)
    if (enc === ENC_SKIPPED) return
    state.completed++
    if (state.options.recordTiming) {
      const times = state.memory.times
      const slot = slotOf(id)
      const run = times[2 * slot + 1]!
      recordMs(state.waitTime, times[2 * slot]! - task.createdAt)
      recordMs(state.runTime, run)
      state.runTotal += run
    }
    if (enc === ENC_ERROR) {
      task.reject(decodeError(data))
      return
    }
    if (enc === ENC_SIDE) {
      // Sent by postMessage just before this packet; the message may still be on its way.
      if (state.sideResults.has(id)) {
        const result = state.sideResults.get(id)
        state.sideResults.delete(id)
        task.resolve(result)
      } else {
        state.awaitingSide.set(id, task)
        state.startSideKeepAlive()
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
}
