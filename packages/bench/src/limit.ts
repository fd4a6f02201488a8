/**
 * The C++ driver: `build/limit`, compiled from `native/limit.cpp` and the engine's own
 * `port.cpp` (see `scripts/build-limit.js`). It is built by the package's `build` script, and on
 * demand here when it is missing or older than its sources; where no C++ compiler is found its
 * rows say so instead of failing the run.
 */
import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { failed, measured, unavailable, type Row } from './report.js'
import type { Budget } from './scenario.js'

const packageDir = fileURLToPath(new URL('../', import.meta.url))
const binary = fileURLToPath(new URL(`../build/${process.platform === 'win32' ? 'limit.exe' : 'limit'}`, import.meta.url))
const buildScript = fileURLToPath(new URL('../scripts/build-limit.js', import.meta.url))

/** One case of the C++ driver's output. */
export interface LimitCase {
  id: string
  unit: string
  runs: number[]
  p50us?: number
  p99us?: number
}

/** What {@link NativeLimit.run} returns: the cases by id, or why there are none. */
export type LimitCases = Map<string, LimitCase> | { state: 'unavailable' | 'failed'; reason: string }

interface LimitOutput {
  engine: string
  compiler: string
  runs: number
  results: LimitCase[]
}

export class NativeLimit {
  readonly #budget: Budget
  #built: { ok: true } | { ok: false; reason: string } | undefined
  /** The compiler the limit was built with, once it has run. */
  compiler: string | undefined

  /** Runs, run length and packet cap come from `budget`, as for the JS rows. */
  constructor(budget: Budget) {
    this.#budget = budget
  }

  /** Builds the program if it is missing or stale; remembers a failure. */
  #ensureBuilt(): { ok: true } | { ok: false; reason: string } {
    if (this.#built !== undefined) return this.#built
    const result = spawnSync(process.execPath, [buildScript], { cwd: packageDir, encoding: 'utf8' })
    if (result.status === 0 && existsSync(binary)) {
      this.#built = { ok: true }
    } else {
      const detail = (result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n').pop()
      this.#built = { ok: false, reason: `C++ driver not built: ${detail}` }
    }
    return this.#built
  }

  /**
   * Runs the cases whose ids start with any of `prefixes` (in one process) and returns them by
   * id, or why they could not run (never rejects).
   */
  async run(prefixes: string[]): Promise<LimitCases> {
    const built = this.#ensureBuilt()
    if (!built.ok) return { state: 'unavailable', reason: built.reason }
    const b = this.#budget
    const args = ['--runs', String(b.runs), '--seconds', String(b.roundSeconds), '--max-packets', String(b.maxPackets)]
    args.push('--case', prefixes.join(','))
    try {
      const { stdout } = await promisify(execFile)(binary, args, { maxBuffer: 16 << 20, timeout: 300_000 })
      const output = JSON.parse(stdout) as LimitOutput
      this.compiler = output.compiler
      return new Map(output.results.map((c) => [c.id, c]))
    } catch (error) {
      const e = error as { stderr?: string; message?: string }
      return { state: 'failed', reason: `C++ driver failed: ${(e.stderr || e.message || String(error)).trim()}` }
    }
  }
}

/** The row of native-limit case `caseId` from `cases` (as returned by {@link NativeLimit.run}). */
export function limitRow(cases: LimitCases, caseId: string, rowId: string, label = 'C++ driver of the same engine'): Row {
  if (!(cases instanceof Map)) {
    return cases.state === 'failed'
      ? failed(rowId, label, 'native', cases.reason)
      : unavailable(rowId, label, 'native', cases.reason)
  }
  const found = cases.get(caseId)
  if (found === undefined) return unavailable(rowId, label, 'native', `the C++ driver has no case ${caseId}`)
  const latency =
    found.p50us !== undefined && found.p99us !== undefined ? { p50Us: found.p50us, p99Us: found.p99us } : undefined
  return measured(rowId, label, 'native', found.runs, latency ? { latency } : {})
}
