/**
 * The shared control block between the main thread and the workers of one benchmark case: a
 * `SharedArrayBuffer` that every thread of the case maps. Nothing in it is a port or a queue
 * under test; it only starts rounds and carries reports back, outside the timed section.
 *
 * Protocol (all words are `Int32`, all reports `Float64`):
 * - a worker that is set up adds 1 to `READY`;
 * - main starts round r by writing the round's packet count to `SIZE` and r to `ROUND`, then
 *   notifying `ROUND`; gated workers (consumers, producers, the ping side of ping-pong) wait on `ROUND`
 *   with `Atomics.wait`, so a round starts on every thread within one futex wake-up;
 *   `ROUND = -1` tells gated workers to exit;
 * - a worker that has finished its part of a round writes its {@link Report} into its slot and
 *   adds 1 to `DONE`; main waits for `DONE` to reach the number of reporters, reads the slots,
 *   and clears `DONE` before starting the next round;
 * - producers that share a port add 1 to `FINISHED` when they are done posting: the one that
 *   brings it to the producer count posts the STOP packets (so STOPs follow every data packet).
 *
 * Timestamps are absolute milliseconds (`performance.timeOrigin + performance.now()`), so the
 * start taken on one thread and the end taken on another are comparable.
 */
import { performance } from 'node:perf_hooks'

/** Word indexes in the `Int32Array` view. */
const ROUND = 0
const DONE = 1
const READY = 2
const FINISHED = 3
const SIZE = 4
const WORDS = 16 // one cache line of control words, then the report slots

/** Doubles per report slot. */
const SLOT = 8

/** The key consumers stop on: the largest key a `number` can carry. */
export const STOP = Number.MAX_SAFE_INTEGER
/** The key that tells a baseline worker (which has no `close()` to wake it) to exit. */
export const EXIT = Number.MAX_SAFE_INTEGER - 1

/** What one worker reports at the end of a round. */
export interface Report {
  /** Data packets (or round trips, or tasks) this worker handled in the round. */
  count: number
  /** The sum of their keys: with `count`, catches a lost or duplicated packet. */
  sum: number
  /** When this worker started its part of the round (absolute ms), or 0 if main started it. */
  start: number
  /** When this worker finished its part of the round (absolute ms). */
  end: number
}

/** Now, in absolute milliseconds, comparable across threads. */
export function now(): number {
  return performance.timeOrigin + performance.now()
}

/** A view of a control block; each thread makes its own over the same buffer. */
export class Control {
  /** The buffer to send to the workers (in `workerData`). */
  readonly buffer: SharedArrayBuffer
  readonly #words: Int32Array
  readonly #reports: Float64Array

  /**
   * @param buffer - an existing control block, or omit to make one with `slots` report slots.
   * @param slots - report slots (one per reporting worker) when making a new block.
   */
  constructor(buffer?: SharedArrayBuffer, slots = 8) {
    this.buffer = buffer ?? new SharedArrayBuffer(WORDS * 4 + slots * SLOT * 8)
    this.#words = new Int32Array(this.buffer, 0, WORDS)
    this.#reports = new Float64Array(this.buffer, WORDS * 4)
  }

  // --- worker side -------------------------------------------------------------------------

  /** This worker is set up and waiting. */
  ready(): void {
    Atomics.add(this.#words, READY, 1)
    Atomics.notify(this.#words, READY)
  }

  /**
   * Blocks this thread until main starts a round after `previous`; returns the round number,
   * or -1 when main says to exit.
   */
  nextRound(previous: number): number {
    for (;;) {
      const round = Atomics.load(this.#words, ROUND)
      if (round !== previous) return round
      Atomics.wait(this.#words, ROUND, previous)
    }
  }

  /** As {@link Control.nextRound}, without blocking the event loop (for event-driven workers). */
  async nextRoundAsync(previous: number): Promise<number> {
    for (;;) {
      const round = Atomics.load(this.#words, ROUND)
      if (round !== previous) return round
      await waitAsync(this.#words, ROUND, previous)
    }
  }

  /** The packet count of the current round. */
  get size(): number {
    return Atomics.load(this.#words, SIZE)
  }

  /** Records this worker's report in `slot` and counts it as done. */
  report(slot: number, report: Report): void {
    const at = slot * SLOT
    this.#reports[at] = report.count
    this.#reports[at + 1] = report.sum
    this.#reports[at + 2] = report.start
    this.#reports[at + 3] = report.end
    Atomics.add(this.#words, DONE, 1)
    Atomics.notify(this.#words, DONE)
  }

  /** A producer finished posting; true for the last of `producers` (it posts the STOPs). */
  finishedProducing(producers: number): boolean {
    return Atomics.add(this.#words, FINISHED, 1) + 1 === producers
  }

  // --- main side ------------------------------------------------------------------------------

  /** How many workers called {@link Control.ready}. */
  get readyCount(): number {
    return Atomics.load(this.#words, READY)
  }

  /** How many workers reported in the current round. */
  get doneCount(): number {
    return Atomics.load(this.#words, DONE)
  }

  /** Resolves when `READY` or `DONE` (per `which`) may have changed from `seen`, or after `ms`. */
  async changed(which: 'ready' | 'done', seen: number, ms: number): Promise<void> {
    await waitAsync(this.#words, which === 'ready' ? READY : DONE, seen, ms)
  }

  /** Starts round `round` with `size` packets: clears `DONE` and `FINISHED`, wakes gated workers. */
  start(round: number, size: number): void {
    Atomics.store(this.#words, DONE, 0)
    Atomics.store(this.#words, FINISHED, 0)
    Atomics.store(this.#words, SIZE, size)
    Atomics.store(this.#words, ROUND, round)
    Atomics.notify(this.#words, ROUND)
  }

  /** Tells gated workers to exit. */
  exit(): void {
    Atomics.store(this.#words, ROUND, -1)
    Atomics.notify(this.#words, ROUND)
  }

  /** The report in `slot`. */
  read(slot: number): Report {
    const at = slot * SLOT
    const r = this.#reports
    return { count: r[at]!, sum: r[at + 1]!, start: r[at + 2]!, end: r[at + 3]! }
  }
}

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }

/** `Atomics.waitAsync` (ES2024; in Node since 16), typed locally because our lib is ES2022. */
async function waitAsync(array: Int32Array, index: number, value: number, ms = Infinity): Promise<void> {
  const result = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(array, index, value, ms)
  if (result.async) await result.value
}
