/**
 * Scenario 4, a pool round trip: the main thread submits a tiny task (it returns its input) and
 * awaits the result, keeping a fixed number of tasks in flight (a window of 64, then 1000). What
 * is measured is the pool's own cost per task: dispatch, the hop to a worker and back, and
 * settling the promise. Every result is checked against its input, and every task must settle.
 *
 * Rows: PortPool.run (when @iocp/core exports PortPool), Piscina 5's run() with the same task
 * module and the same thread count, and poolifier's FixedThreadPool.execute() with the same task
 * function. No native limit: a pool is a JS construct.
 */
import { availableParallelism } from 'node:os'
import { piscina, poolifier, portPool, type Pool } from '../baselines/pools.js'
import { attempt, failed, measured, unavailable, type Group, type Impl, type Row } from '../report.js'
import { sizedRuns, type Budget, type Context, type Scenario } from '../scenario.js'

const WINDOWS = [64, 1000]
/** Tasks in the warm-up run that sizes the timed runs. */
const FIRST = 2_000

/** Runs `total` tasks with at most `window` in flight; resolves with tasks per second. */
function drive(pool: Pool, total: number, window: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let next = 0
    let settled = 0
    let failed = false
    const start = performance.now()
    const launch = (): void => {
      const input = next++
      pool.run(input).then(
        (output) => {
          if (failed) return
          if (output !== input) {
            failed = true
            reject(new Error(`task ${input} returned ${String(output)}`))
            return
          }
          settled++
          if (next < total) launch()
          else if (settled === total) resolve(total / ((performance.now() - start) / 1000))
        },
        (error: unknown) => {
          if (!failed) reject(error)
          failed = true
        },
      )
    }
    for (let k = 0; k < Math.min(window, total); k++) launch()
  })
}

async function poolRows(
  name: string,
  impl: Impl,
  open: () => Promise<Pool | string> | Pool,
  budget: Budget,
): Promise<Map<number, Row>> {
  const rows = new Map<number, Row>()
  const id = (window: number): string => `pool.${window}.${impl === 'port' ? 'portpool' : impl}`
  const label = (window: number): string => `${name}, window ${window}`
  let pool: Pool | string | undefined
  try {
    pool = await open()
    for (const window of WINDOWS) {
      if (typeof pool === 'string') {
        rows.set(window, unavailable(id(window), label(window), impl, pool))
        continue
      }
      const running = pool
      rows.set(
        window,
        await attempt(id(window), label(window), impl, async () =>
          measured(id(window), label(window), impl, await sizedRuns(budget, FIRST, (n) => drive(running, n, window))),
        ),
      )
    }
    if (typeof pool === 'object') await pool.close()
  } catch (error) {
    // Opening or closing the pool failed: every row not yet measured fails with it.
    for (const window of WINDOWS) if (!rows.has(window)) rows.set(window, failed(id(window), label(window), impl, error))
  }
  return rows
}

async function run(context: Context): Promise<Group[]> {
  const { budget } = context
  const threads = availableParallelism()
  context.progress(`pool: PortPool (${threads} threads)`)
  const port = await poolRows('PortPool.run', 'port', () => portPool(threads), budget)
  context.progress(`pool: Piscina (${threads} threads)`)
  const pisc = await poolRows('Piscina.run', 'piscina', () => piscina(threads), budget)
  context.progress(`pool: poolifier (${threads} threads)`)
  const poolf = await poolRows('poolifier FixedThreadPool.execute', 'poolifier', () => poolifier(threads), budget)
  return WINDOWS.map((window) => ({
    id: `pool.${window}`,
    title: `Pool round trip of a tiny task, ${window} in flight, ${threads} threads`,
    unit: 'tasks/s',
    better: 'higher' as const,
    subject: `pool.${window}.portpool`,
    rows: [port.get(window)!, pisc.get(window)!, poolf.get(window)!],
  }))
}

export const pool: Scenario = {
  name: 'pool',
  title: '4. Pool round trip',
  summary:
    'a tiny task (returns its input) through PortPool.run, Piscina.run and poolifier FixedThreadPool.execute, same task, same thread count, 64 and 1000 tasks in flight.',
  run,
}
