/**
 * What a pool reports about itself: {@link PoolStats} (live counters and the raw histograms)
 * and the Piscina-shaped {@link PoolHistogram} summaries. The histograms are
 * `perf_hooks.createHistogram()` histograms recorded in nanoseconds; the summaries are in
 * milliseconds, as Piscina's are.
 */
import type { RecordableHistogram } from 'node:perf_hooks'

/** A snapshot of a pool, from {@link PortPool.stats}. */
export interface PoolStats {
  /** Tasks that finished, with a result or with the task's own error. */
  readonly completed: number
  /** Tasks submitted whose outcome is not back yet (queued, running, or aborted and still running). */
  readonly inFlight: number
  /** Tasks (and raw packets) waiting for a worker: in the port's queue, or waiting for a task slot. */
  readonly queued: number
  /** Workers running a task (a worker inside `ctx.blocking()` does not count). */
  readonly running: number
  /** Idle workers, blocked in the port's `get()`. */
  readonly waiting: number
  /** Worker loops started and not ended. */
  readonly threads: number
  /** {@link PortPool.utilization}. */
  readonly utilization: number
  /** Run time of each finished task, in nanoseconds (empty when `recordTiming` is off). */
  readonly runTime: RecordableHistogram
  /** Time from `run()` to the task's start, in nanoseconds (empty when `recordTiming` is off). */
  readonly waitTime: RecordableHistogram
}

/** A histogram summarised in milliseconds, as Piscina's `PiscinaHistogramSummary`. */
export interface HistogramSummary {
  readonly average: number
  readonly mean: number
  readonly stddev: number
  readonly min: number
  readonly max: number
  readonly p0_001: number
  readonly p0_01: number
  readonly p0_1: number
  readonly p1: number
  readonly p2_5: number
  readonly p10: number
  readonly p25: number
  readonly p50: number
  readonly p75: number
  readonly p90: number
  readonly p97_5: number
  readonly p99: number
  readonly p99_9: number
  readonly p99_99: number
  readonly p99_999: number
}

/** Piscina's `pool.histogram`: summaries of the run and wait times, and their reset. */
export interface PoolHistogram {
  readonly runTime: HistogramSummary
  readonly waitTime: HistogramSummary
  resetRunTime(): void
  resetWaitTime(): void
}

const PERCENTILES: ReadonlyArray<readonly [keyof HistogramSummary, number]> = [
  ['p0_001', 0.001],
  ['p0_01', 0.01],
  ['p0_1', 0.1],
  ['p1', 1],
  ['p2_5', 2.5],
  ['p10', 10],
  ['p25', 25],
  ['p50', 50],
  ['p75', 75],
  ['p90', 90],
  ['p97_5', 97.5],
  ['p99', 99],
  ['p99_9', 99.9],
  ['p99_99', 99.99],
  ['p99_999', 99.999],
]

const NS_PER_MS = 1e6

/** Records a duration given in milliseconds into a nanosecond histogram. */
export function recordMs(histogram: RecordableHistogram, ms: number): void {
  histogram.record(ms > 0 ? Math.max(1, Math.round(ms * NS_PER_MS)) : 1)
}

/** Summarises a nanosecond histogram in milliseconds; all zeros when it is empty. */
export function summarize(histogram: RecordableHistogram): HistogramSummary {
  const empty = histogram.count === 0
  const ms = (ns: number): number => (empty ? 0 : ns / NS_PER_MS)
  const summary: Record<string, number> = {
    average: ms(histogram.mean),
    mean: ms(histogram.mean),
    stddev: ms(histogram.stddev),
    min: ms(histogram.min),
    max: ms(histogram.max),
  }
  for (const [name, p] of PERCENTILES) summary[name] = ms(histogram.percentile(p))
  return summary as unknown as HistogramSummary
}
