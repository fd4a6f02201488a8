/**
 * The pool's two completion ports, made in this one place: the task port (tasks and raw
 * packets, under the pool's concurrency rule; the port keeps held-packet records so that the
 * tasks of a worker that dies or is ended can be recovered with `recoverHeld`) and the results
 * port (drained by the main thread only).
 */
import { CompletionPort } from '../../port/completion-port.js'

/** The ports of one pool. */
export interface PoolPortPair {
  /** Tasks and raw packets; the workers block on it. */
  readonly tasks: CompletionPort
  /** Outcomes, drained by the main thread. */
  readonly results: CompletionPort
}

/** Creates the ports of a pool whose tasks run at most `concurrency` at once. */
export function createPoolPorts(concurrency: number): PoolPortPair {
  // The task port keeps the held packets of workers that die, for recoverHeld.
  const tasks = new CompletionPort({ concurrency, trackHeld: true })
  let results: CompletionPort
  try {
    results = new CompletionPort({ concurrency: 1 })
  } catch (error) {
    tasks.close()
    throw error
  }
  return { tasks, results }
}
