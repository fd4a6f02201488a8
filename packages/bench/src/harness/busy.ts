/**
 * A busy machine: one CPU-bound thread per core, spinning in JavaScript beside a measurement,
 * as other work on a shared server would. The pool scenario starts it right before a peer's
 * timed runs and stops it right after, the same way for every peer of the run, so each pool
 * meets the same competition for the cores.
 *
 * The spinners are plain worker threads with no work but the spin: they poll one shared word
 * (the stop flag) and touch nothing else.
 */
import { Worker } from 'node:worker_threads'

/** cells[STOP] != 0: the spinners return. cells[STARTED]: how many have started spinning. */
const STOP = 0
const STARTED = 1

const SPINNER = `
const { workerData } = require('node:worker_threads')
const cells = workerData.cells
Atomics.add(cells, ${STARTED}, 1)
Atomics.notify(cells, ${STARTED})
let x = 0
while (Atomics.load(cells, ${STOP}) === 0) x = (x + 1) | 0
`

type AsyncWait = { async: false; value: string } | { async: true; value: Promise<string> }
const waitAsync = (Atomics as unknown as { waitAsync(cells: Int32Array, index: number, value: number): AsyncWait }).waitAsync

export class BusyMachine {
  readonly #cells: Int32Array
  readonly #workers: Worker[]

  private constructor(cells: Int32Array, workers: Worker[]) {
    this.#cells = cells
    this.#workers = workers
  }

  /** Starts `threads` spinners and resolves once every one of them spins. */
  static async start(threads: number): Promise<BusyMachine> {
    const cells = new Int32Array(new SharedArrayBuffer(8))
    const workers = Array.from({ length: threads }, () => new Worker(SPINNER, { eval: true, workerData: { cells } }))
    const busy = new BusyMachine(cells, workers)
    const failed = new Promise<never>((_, reject) => {
      for (const worker of workers) worker.once('error', reject)
    })
    const spinning = (async () => {
      for (;;) {
        const started = Atomics.load(cells, STARTED)
        if (started >= threads) return
        const wait = waitAsync(cells, STARTED, started)
        if (wait.async) await wait.value
      }
    })()
    try {
      await Promise.race([spinning, failed])
    } catch (error) {
      await busy.stop()
      throw error
    }
    return busy
  }

  /** Stops every spinner and resolves once their threads have exited. */
  async stop(): Promise<void> {
    Atomics.store(this.#cells, STOP, 1)
    await Promise.all(this.#workers.map((worker) => new Promise<void>((resolve) => {
      if (worker.threadId < 0) resolve()
      else worker.once('exit', () => resolve())
    })))
  }
}
