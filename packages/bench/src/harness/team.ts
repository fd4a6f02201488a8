/**
 * The main-thread side of a benchmark case that runs on worker threads: starts the workers,
 * runs timed rounds through the shared {@link Control} block, and turns every way a worker can
 * fail (an exception, an early exit, a round that never completes) into a rejected promise, so
 * a broken case fails the run instead of hanging it.
 *
 * Main waits with `Atomics.waitAsync`, never `Atomics.wait`: its event loop keeps running, so a
 * worker's `'error'` event is seen at once. Round times come from the workers' own timestamps,
 * not from when main wakes up.
 */
import { Worker, type TransferListItem } from 'node:worker_threads'
import { Control, now, type Report } from './control.js'

/** One worker of a team. */
export interface WorkerSpec {
  /** The worker's entry module (a compiled `.js` file of this package). */
  file: URL
  /** A name for error messages (`"port consumer 1"`). */
  name: string
  /** `workerData`; the team adds `control` (the control block's buffer). */
  data: Record<string, unknown>
  /** Objects to transfer (e.g. `MessagePort`s inside `data`). */
  transfer?: TransferListItem[]
}

/** The outcome of one round, as seen by main. */
export interface RoundResult {
  /** When main started the round (absolute ms). */
  start: number
  /** The reports of the workers that report, by slot. */
  reports: Report[]
}

/** How long a round (or start-up) may take before the case fails as hung. */
const TIMEOUT_MS = 60_000

export class Team {
  readonly control: Control
  readonly #workers: Worker[] = []
  readonly #names: string[] = []
  #failure: Error | undefined
  readonly #failed: Promise<never>
  #fail!: (error: Error) => void
  #closing = false
  #round = 0

  private constructor(control: Control) {
    this.control = control
    this.#failed = new Promise<never>((_, reject) => {
      this.#fail = (error) => {
        if (this.#failure === undefined) this.#failure = error
        reject(this.#failure)
      }
    })
    this.#failed.catch(() => {}) // observed through round() / launch()
  }

  /**
   * Starts the workers and resolves once `ready` of them called `control.ready()`.
   * @param slots - report slots to allocate (the number of reporting workers).
   */
  static async launch(specs: WorkerSpec[], options: { slots: number; ready?: number }): Promise<Team> {
    const team = new Team(new Control(undefined, Math.max(1, options.slots)))
    for (const spec of specs) {
      const worker = new Worker(spec.file, {
        workerData: { ...spec.data, control: team.control.buffer },
        transferList: spec.transfer ?? [],
      })
      team.#workers.push(worker)
      team.#names.push(spec.name)
      worker.on('error', (error: unknown) => {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
        team.#fail(new Error(`${spec.name} failed: ${message}`))
      })
      worker.on('exit', (code) => {
        if (!team.#closing) team.#fail(new Error(`${spec.name} exited early (code ${code})`))
      })
    }
    try {
      await team.#until('ready', options.ready ?? specs.length, 'start-up')
    } catch (error) {
      await team.close()
      throw error
    }
    return team
  }

  /**
   * Runs one round: clears the reports, records the start time, wakes the gated workers, runs
   * `kick` (main's own part, e.g. posting the packets) and waits for `reporters` reports.
   * @param size - the round's packet count, readable by workers as `control.size`.
   */
  async round(size: number, reporters: number, kick?: () => void): Promise<RoundResult> {
    if (this.#failure !== undefined) throw this.#failure
    this.#round += 1
    const start = now()
    this.control.start(this.#round, size)
    kick?.()
    await this.#until('done', reporters, `round ${this.#round}`)
    const reports: Report[] = []
    for (let slot = 0; slot < reporters; slot++) reports.push(this.control.read(slot))
    return { start, reports }
  }

  /**
   * Tells gated workers to exit and waits for every worker to end; one that has not ended after
   * `graceMs` is terminated. Ports and queues that workers block on must be closed (or sent an
   * EXIT) first: `terminate()` cannot interrupt a thread blocked in native code.
   */
  async close(graceMs = 2_000): Promise<void> {
    this.#closing = true
    this.control.exit()
    await Promise.all(
      this.#workers.map(async (worker) => {
        if (worker.threadId === -1) return // already exited
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
        const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), graceMs).unref())
        if ((await Promise.race([exited, timer])) === 'late') await worker.terminate()
      }),
    )
  }

  async #until(which: 'ready' | 'done', target: number, what: string): Promise<void> {
    const deadline = Date.now() + TIMEOUT_MS
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure
      const seen = which === 'ready' ? this.control.readyCount : this.control.doneCount
      if (seen >= target) return
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(
          `${what} did not complete within ${TIMEOUT_MS / 1000} s (${seen} of ${target} workers ${which}): a packet or a STOP was lost, or a worker hung`,
        )
      }
      await Promise.race([this.control.changed(which, seen, Math.min(left, 500)), this.#failed])
    }
  }
}
