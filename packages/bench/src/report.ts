/**
 * The shape of every result @iocp/bench produces: rows grouped into comparisons, grouped into
 * scenarios. The same objects are printed as tables, written as JSON, drawn as SVG and written
 * as Markdown, so no figure is ever typed twice.
 *
 * A row is a discriminated union on `state`: measured (with every run's value), unavailable (a
 * peer that cannot run here, with the reason) or failed (the error; the run exits non-zero).
 */

/** Who produced a row. */
export type Impl =
  | 'port' // @iocp/core's CompletionPort (or PortPool) from JS
  | 'native' // the same C++ engine driven from C++: the C++ driver
  | 'sab' // the pure-JS SharedArrayBuffer + Atomics queue (src/baselines/sab-queue.ts)
  | 'messageport' // MessagePort.postMessage
  | 'piscina'
  | 'poolifier'
  | 'bullmq' // BullMQ on the same redis-server (redis scenario)
  | 'redis' // raw Redis Streams commands: the ceiling of the redis scenario
  | 'fs' // node:fs (the io scenario's peers)

/** A row with figures. */
export interface MeasuredRow {
  state: 'measured'
  /** Stable id, unique in the run (`fanout.get.2.port`). */
  id: string
  /** What the row measures, for people. */
  label: string
  impl: Impl
  /** Every timed run's value, in the group's unit, in the order they ran. */
  runs: number[]
  /** The median of {@link MeasuredRow.runs}: the figure that is compared. */
  median: number
  min: number
  max: number
  /** Round-trip latency percentiles, in microseconds (ping-pong only). */
  latency?: { p50Us: number; p99Us: number }
  /** Anything a reader must know to interpret the figure. */
  note?: string
}

/** A row that cannot be measured on this machine or in this tree (not a failure). */
export interface UnavailableRow {
  state: 'unavailable'
  id: string
  label: string
  impl: Impl
  reason: string
}

/** A row whose measurement failed: a lost packet, a crash, a hang. Fails the run. */
export interface FailedRow {
  state: 'failed'
  id: string
  label: string
  impl: Impl
  error: string
}

export type Row = MeasuredRow | UnavailableRow | FailedRow

/** One comparison: rows measuring the same thing, beside each other. */
export interface Group {
  id: string
  title: string
  /** The unit of the rows' figures (`packets/s`, `round trips/s`, `tasks/s`, `bytes/packet`). */
  unit: string
  /** Whether a larger figure is better (throughput) or a smaller one (memory). */
  better: 'higher' | 'lower'
  /** The id of the row the others are compared with (the completion port's). */
  subject: string
  /** The id of the native-limit row, if the group has one. */
  limit?: string
  rows: Row[]
  /** For the chart: the consumer threads and the dequeue form, if this group is a point of it. */
  chart?: { consumers: number; form: 'get' | 'batch' }
  /** For the chart's pool panel: this group's category label there, if it is one of its points. */
  poolChart?: string
}

/** One scenario of the run. */
export interface ScenarioResult {
  /** The `--only` name. */
  name: string
  title: string
  /** What it measures and how, in a sentence or two. */
  summary: string
  groups: Group[]
  /** Wall time the scenario took. */
  seconds: number
}

/** The machine and runtime a run was measured on. */
export interface Machine {
  node: string
  v8: string
  platform: string
  arch: string
  cpu: string
  cores: number
  availableParallelism: number
  memoryGiB: number
  /** 1-minute load average when the run started and when it ended (0 where unsupported). */
  loadStart: number
  loadEnd: number
}

/** Everything one run produced (the `--json` file). */
export interface RunResult {
  tool: string
  date: string
  command: string
  quick: boolean
  machine: Machine
  scenarios: ScenarioResult[]
  targets: TargetResult[]
  seconds: number
}

/** A target, checked against this run's figures. */
export interface TargetResult {
  target: string
  /** The measured ratio or figure, formatted, or why it could not be checked. */
  measured: string
  status: 'met' | 'missed' | 'not measured'
}

// --- row constructors -----------------------------------------------------------------------

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The `q`-quantile (0..1) of `values`, linearly interpolated. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN
  const at = q * (sorted.length - 1)
  const lo = Math.floor(at)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}

export function measured(
  id: string,
  label: string,
  impl: Impl,
  runs: number[],
  extra: { latency?: MeasuredRow['latency']; note?: string } = {},
): MeasuredRow {
  if (runs.length === 0) throw new Error(`${id}: no runs`)
  return {
    state: 'measured',
    id,
    label,
    impl,
    runs,
    median: median(runs),
    min: Math.min(...runs),
    max: Math.max(...runs),
    ...extra,
  }
}

export function unavailable(id: string, label: string, impl: Impl, reason: string): UnavailableRow {
  return { state: 'unavailable', id, label, impl, reason }
}

export function failed(id: string, label: string, impl: Impl, error: unknown): FailedRow {
  const text = error instanceof Error ? error.message : String(error)
  return { state: 'failed', id, label, impl, error: text }
}

/** Runs `measure` and turns an exception into a {@link FailedRow}. */
export async function attempt(
  id: string,
  label: string,
  impl: Impl,
  measure: () => Promise<Row> | Row,
): Promise<Row> {
  try {
    return await measure()
  } catch (error) {
    return failed(id, label, impl, error)
  }
}

/** The row of `group` with id `id`, if it was measured. */
export function measuredRow(group: Group, id: string | undefined): MeasuredRow | undefined {
  const row = group.rows.find((r) => r.id === id)
  return row?.state === 'measured' ? row : undefined
}

/**
 * How many times better `subject` is than `other` in `group`'s sense (>1: subject is better):
 * `subject / other` for throughput, `other / subject` for memory.
 */
export function advantage(group: Group, subject: MeasuredRow, other: MeasuredRow): number {
  return group.better === 'higher' ? subject.median / other.median : other.median / subject.median
}
