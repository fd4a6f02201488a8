/**
 * What a scenario is, and the time budget every scenario sizes itself by. A scenario is one
 * `src/scenarios/*.bench.ts` file: it measures the completion port and, beside it, every peer
 * that applies, and returns {@link Group}s of rows.
 */
import type { NativeLimit } from './limit.js'
import type { Group } from './report.js'

/** How long to measure. `--quick` is sized to finish the whole run in well under a minute on 2 cores. */
export interface Budget {
  quick: boolean
  /** Timed runs per row (the median is reported); a warm-up run comes first and is discarded. */
  runs: number
  /** Target length of one timed run of a cross-thread case, in seconds. */
  roundSeconds: number
  /** tinybench: the time budget of one task in one run, and of its warm-up, in ms. */
  benchTimeMs: number
  warmupTimeMs: number
  /**
   * The most packets (or tasks) one cross-thread run may use: a producer that outruns its
   * consumers queues all of them, 32 bytes each in a port.
   */
  maxPackets: number
  /** Memory scenario: runs per row (each in a fresh process). */
  memoryRuns: number
}

export function budgetFor(quick: boolean): Budget {
  return quick
    ? { quick, runs: 3, roundSeconds: 0.2, benchTimeMs: 150, warmupTimeMs: 50, maxPackets: 2_000_000, memoryRuns: 1 }
    : { quick, runs: 7, roundSeconds: 0.5, benchTimeMs: 600, warmupTimeMs: 200, maxPackets: 10_000_000, memoryRuns: 3 }
}

/** What a scenario gets to work with. */
export interface Context {
  budget: Budget
  limit: NativeLimit
  /** A line of progress for the terminal (stderr); not part of the results. */
  progress(message: string): void
}

export interface Scenario {
  /** The name `--only` selects it by. */
  name: string
  title: string
  /** What it measures and how. */
  summary: string
  run(context: Context): Promise<Group[]>
}

/**
 * Measures a cross-thread case whose cost per packet is unknown in advance: one warm-up run of
 * `first` packets (discarded) gives the rate, from which every timed run is sized to last about
 * `budget.roundSeconds`. `once(n)` runs `n` packets and returns the rate it measured.
 */
export async function sizedRuns(
  budget: Budget,
  first: number,
  once: (n: number) => Promise<number>,
  max = budget.maxPackets,
): Promise<number[]> {
  const rate = await once(first)
  const n = Math.max(first, Math.min(max, Math.round(rate * budget.roundSeconds)))
  const runs: number[] = []
  for (let r = 0; r < budget.runs; r++) runs.push(await once(n))
  return runs
}
