/**
 * Worker events: what the main thread does when a worker speaks (a report, a user's message),
 * exits (its tasks and raw packets recovered exactly, a replacement started) or cannot start
 * (replaced, or, after too many failures in a row, the pool fails).
 */
import type { MessagePort } from 'node:worker_threads'
import { makePacket, type Packet } from '../../port/packet.js'
import { decodeError, isTaskKey } from '../shared/codec.js'
import { PoolErrors } from '../shared/errors.js'
import { REPORT, isReport, type WorkerReport } from '../shared/protocol.js'
import type { Results } from './results.js'
import type { PoolState } from './state.js'
import type { Submission } from './submission.js'
import type { Task } from './task-table.js'
import type { WorkerEvents } from './workers.js'

export class WorkerEventHandlers implements WorkerEvents {
  readonly #state: PoolState
  readonly #results: Results
  readonly #submission: () => Submission

  /** `submission` is read when a loop asks for a payload (it is made after the handlers). */
  constructor(state: PoolState, results: Results, submission: () => Submission) {
    this.#state = state
    this.#results = results
    this.#submission = submission
  }

  /** A worker's `parentPort` message: a pool report, or the user's (re-emitted as `'message'`). */
  message(message: unknown): void {
    if (isReport(message)) this.#onReport(message)
    else this.#state.events.emit('message', message)
  }

  /** A loop asks for the payload of task `id` (it travels by postMessage). */
  side(channel: MessagePort, id: number): void {
    this.#submission().sendSide(channel, id)
  }

  /** A loop sent the result of task `id` by postMessage. */
  sideResult(id: number, result: unknown): void {
    this.#results.onSideResult(id, result)
  }

  /**
   * A boot task that did not run goes back to the head of the outbox, ahead of the tasks held
   * meanwhile (behind what was posted since it was offered); one aborted meanwhile (settled
   * already) frees its slot, as its SKIPPED packet would have.
   */
  bootBack(task: Task): void {
    const state = this.#state
    if (state.torn) return
    if (task.settled) {
      state.table.take(task.id)
      state.afterChange()
      return
    }
    state.outbox.putBack(task)
  }

  /** A boot task's result packet (it came on the loop's side channel). */
  bootResult(key: number, bytes: number, id: number, data: Uint8Array | undefined): void {
    this.#results.onBootResult(key, bytes, id, data)
  }

  /** The workers stopped holding the tasks back: post what waits. */
  holdEnded(): void {
    this.#state.outbox.release()
  }

  /**
   * A worker's thread exited. The tasks it held are rejected, exactly: the tasks its loop was
   * running (`running`, which covers a task that untied the thread from the port by waiting on
   * another), and every task packet the port says it held (which covers the moment between the
   * dequeue and the loop's bookkeeping). Results it posted before it died are taken first, so a
   * task that finished keeps its result. Then a replacement starts.
   */
  exit(threadId: number, exitCode: number, cause: unknown, running: number[], died: boolean): void {
    const state = this.#state
    if (state.torn) return
    this.#results.takeAll()
    let held: Packet[] = []
    try {
      held = state.tasks.recoverHeld(threadId)
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
        state.sideResults.delete(id)
        const task = state.table.take(id)
        if (task === undefined || task.settled) continue
        task.settle()
        task.reject(error)
      }
      for (const packet of lost) state.packetFailed(error, packet)
    } else if (died && cause !== undefined && state.events.listenerCount('error') > 0) {
      state.events.emit('error', cause)
    }
    // Replaced even while close() waits for the pending tasks (the workers stop starting once
    // they are done).
    if (died && state.failed === undefined) state.workers.ensure()
    // A loop that left as idle (above minThreads, possibly 0) may leave a task just posted.
    if (state.elastic && !state.closing) state.scaleUp()
    state.afterChange()
  }

  /**
   * A worker could not start. Another replaces it (the error goes to 'error' listeners, if
   * any), or, after too many in a row (`final`), the pool fails with `error`.
   */
  startFailed(error: Error, final: boolean): void {
    if (final) this.fail(error)
    else if (this.#state.events.listenerCount('error') > 0) this.#state.events.emit('error', error)
  }

  /**
   * The pool cannot run tasks any more (no worker could start, or the results drain broke):
   * every pending and later task rejects with `error`, and `post()` throws it. The workers
   * still running stay until close() or destroy() ends them.
   */
  fail(error: Error): void {
    const state = this.#state
    if (state.failed !== undefined) return
    state.failed = error
    state.workers.stop()
    state.rejectAll(error)
  }

  #onReport(report: WorkerReport): void {
    switch (report[REPORT]) {
      case 'packetError':
        this.#state.packetFailed(decodeError(report.error), makePacket(report.key, report.bytes, report.overlapped, undefined))
        break
    }
  }
}
