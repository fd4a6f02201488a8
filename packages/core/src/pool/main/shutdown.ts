/**
 * Shutdown: `close()` (graceful: the tasks in flight finish, then the port is shut down so the
 * workers handle the raw packets still queued and leave their loops, then every worker ends)
 * and `destroy()` (now: both ports closed, every pending task rejected), bounded by
 * `closeTimeout`, and the teardown both share, once.
 */
import type { Packet } from '../../port/packet.js'
import { MAX_TIMEOUT_MS, noop } from '../../shared.js'
import { isTaskKey } from '../shared/codec.js'
import { PoolErrors } from '../shared/errors.js'
import type { PoolState } from './state.js'
import type { Submission } from './submission.js'

export class Shutdown {
  readonly #state: PoolState
  readonly #submission: Submission
  #closePromise: Promise<void> | undefined
  #destroyPromise: Promise<void> | undefined
  #teardownPromise: Promise<void> | undefined

  constructor(state: PoolState, submission: Submission) {
    this.#state = state
    this.#submission = submission
  }

  /** `close()`: see {@link PortPool.close}. `force` rejects the tasks not yet started at once. */
  close(force: boolean): Promise<void> {
    if (force && !this.#state.torn) {
      this.#state.closing = true
      this.#submission.abortQueued()
    }
    this.#closePromise ??= this.#close()
    return this.#closePromise
  }

  /** `destroy()`: see {@link PortPool.destroy}. */
  destroy(): Promise<void> {
    this.#destroyPromise ??= this.#destroy()
    return this.#destroyPromise
  }

  async #close(): Promise<void> {
    const state = this.#state
    state.closing = true
    // What close() waits on (Atomics.waitAsync, workers' exits) does not keep the process
    // alive by itself: this does, so that the code after `await pool.close()` runs.
    const keepAlive = setInterval(noop, MAX_TIMEOUT_MS)
    const timeout = state.options.closeTimeout
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<'expired'>((resolve) => {
      if (timeout !== Infinity) timer = setTimeout(() => resolve('expired'), Math.min(timeout, MAX_TIMEOUT_MS))
    })
    try {
      // 1. Queued and running tasks finish (results keep being drained meanwhile).
      let outcome = await Promise.race([state.whenIdle().then(() => 'done' as const), expired])
      if (outcome === 'done' && !state.torn) {
        // 2. Shut the port down: workers handle the raw packets still queued, then every
        //    blocked get() wakes with PortClosedError and the loops end. No loop starts any
        //    more (until now, one replaced a worker that died).
        state.workers.stop()
        try {
          state.tasks.shutdown()
        } catch {
          // closed by destroy() meanwhile
        }
        outcome = await Promise.race([state.workers.whenLoopsEnded().then(() => 'done' as const), expired])
      }
      if (outcome === 'expired') this.#endAll(PoolErrors.closeTimedOut(timeout))
      await this.#teardown()
    } finally {
      if (timer !== undefined) clearTimeout(timer)
      clearInterval(keepAlive)
    }
  }

  async #destroy(): Promise<void> {
    this.#state.closing = true
    this.#endAll(PoolErrors.destroyed())
    const keepAlive = setInterval(noop, MAX_TIMEOUT_MS)
    try {
      await this.#teardown()
    } finally {
      clearInterval(keepAlive)
    }
  }

  /** Closes both ports (waking every blocked worker) and ends every pending task with `error`. */
  #endAll(error: unknown): void {
    const state = this.#state
    state.workers.stop()
    this.#submission.stopAbortTimers()
    state.outbox.discard() // its tasks are still in the table: rejectAll ends them below
    let leftovers: Packet[] = []
    try {
      leftovers = state.tasks.close()
    } catch {
      // already closed
    }
    try {
      state.results.close()
    } catch {
      // already closed
    }
    state.rejectAll(error)
    for (const packet of leftovers) {
      if (!isTaskKey(packet.key)) state.packetFailed(error, packet)
    }
  }

  /** Ends the pool once, however many of close() and destroy() ask for it. */
  #teardown(): Promise<void> {
    this.#teardownPromise ??= this.#endWorkers()
    return this.#teardownPromise
  }

  async #endWorkers(): Promise<void> {
    const state = this.#state
    this.#endAll(PoolErrors.closed())
    state.torn = true
    // Every worker is out of the port's get() now (the ports are closed): Piscina can end them.
    await state.workers.end()
    state.events.emit('close')
  }
}
