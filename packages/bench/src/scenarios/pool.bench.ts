/**
 * Scenario 4, a pool round trip: the main thread submits a tiny task (it returns its input) and
 * awaits the result, keeping a fixed number of tasks in flight (a window of 64, then 1000). What
 * is measured is the pool's own cost per task: dispatch, the hop to a worker and back, and
 * settling the promise. Every result is checked against its input, and every task must settle.
 *
 * Rows: PortPool.run (when @iocp/core exports PortPool), Piscina 5's run() with the same task
 * module and the same thread count, and poolifier's FixedThreadPool.execute() with the same task
 * function. No C++ row: a pool is a JS construct.
 *
 * Time to the first result: a new pool, then one task; the milliseconds from the constructor
 * until that task's promise settles (workers booting, the task module loading, the first round
 * trip), each run a fresh pool, closed after; the pools take turns (see firstResultRows). One
 * more row there is a reference, not a peer: Piscina whose workers also load PortPool's worker
 * code (../tasks/echo-with-pool-worker-code.cts), the part of PortPool's time that is that code.
 *
 * Each case first warms the pool up for one round, unmeasured (see warmUp), then sizes its runs.
 *
 * The busy machine: the 64-in-flight case again, while one CPU-bound thread per core spins
 * beside the pool (harness/busy.ts). The spinners start right before each pool's timed runs (its
 * warm-up included) and stop right after them, the same for every pool in the run.
 */
import { availableParallelism } from 'node:os'
import { loadPortPool, piscina, piscinaWithPoolWorkerCode, poolifier, portPool, type Pool } from '../baselines/pools.js'
import { BusyMachine } from '../harness/busy.js'
import { attempt, failed, measured, unavailable, type Group, type Impl, type Row } from '../report.js'
import { sizedRuns, type Budget, type Context, type Scenario } from '../scenario.js'

const WINDOWS = [64, 1000]
/** The tasks in flight of the busy-machine case. */
const BUSY_WINDOW = 64
/** The id part of the busy-machine group. */
const BUSY = 'busy'
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

/**
 * Runs tasks with `window` in flight for one round (`budget.roundSeconds`), unmeasured: a pool's
 * first rows would otherwise measure its threads starting and its code warming up (a fresh pool
 * of 2 threads boots its workers and reaches its steady rate only some hundreds of milliseconds
 * in), while its later rows would not. Every pool gets the same warm-up before each case.
 */
async function warmUp(pool: Pool, window: number, budget: Budget): Promise<void> {
  const until = performance.now() + budget.roundSeconds * 1000
  do await drive(pool, FIRST, window)
  while (performance.now() < until)
}

/** The timed runs of `window` tasks in flight, with `spinners` CPU-bound threads beside them (0: none). */
async function timedRuns(pool: Pool, window: number, spinners: number, budget: Budget): Promise<number[]> {
  const busy = spinners > 0 ? await BusyMachine.start(spinners) : undefined
  try {
    await warmUp(pool, window, budget)
    return await sizedRuns(budget, FIRST, (n) => drive(pool, n, window))
  } finally {
    await busy?.stop()
  }
}

/** A pool whose time to the first result is measured. */
interface FirstResultPool {
  readonly name: string
  readonly impl: Impl
  /** The row's id, after `pool.first.`; by default the impl's. */
  readonly key?: string
  readonly open: () => Pool | string
}

/** Milliseconds from opening a fresh pool to its first result; the pool is closed after. A string: unavailable. */
async function firstResult(open: () => Pool | string): Promise<number | string> {
  const start = performance.now()
  const pool = open()
  if (typeof pool === 'string') return pool
  try {
    const output = await pool.run(7)
    if (output !== 7) throw new Error(`the first task returned ${String(output)}, expected 7`)
    return performance.now() - start
  } finally {
    await pool.close()
  }
}

/** Every order of 0..n-1 (n! of them). */
function permutations(n: number): number[][] {
  if (n === 0) return [[]]
  return permutations(n - 1).flatMap((order) => Array.from({ length: n }, (_, at) => [...order.slice(0, at), n - 1, ...order.slice(at)]))
}

/**
 * The time to the first result of each pool, over rounds in which the pools take turns (one
 * fresh pool of each per round, going through the orders of the pools in turn), after one unmeasured round. Taking turns gives every pool the
 * same machine: a drift over the rounds (the page cache reclaimed, the threads of the rows
 * before still exiting) falls on all of them alike, where measuring one pool's runs and then
 * the next one's put it on whichever came first. Four times `budget.runs` rounds: a run is one
 * fresh pool, and the boot of a thread varies by several milliseconds from one to the next
 * (two `iocp-bench --only pool` runs of the same code, one after the other, with 14 rounds:
 * PortPool's median 58.5 and 65.5 ms, Piscina's 54.9 and 62.1 ms).
 */
async function firstResultRows(pools: FirstResultPool[], budget: Budget): Promise<Row[]> {
  const runs = pools.map((): number[] => [])
  const ended: Array<Row | undefined> = pools.map(() => undefined)
  const id = (p: FirstResultPool): string => `pool.first.${p.key ?? (p.impl === 'port' ? 'portpool' : p.impl)}`
  const label = (p: FirstResultPool): string => `${p.name}: new pool, first result`
  // The rounds go through every order of the pools in turn, so that each pool comes right
  // after each of the others as often (a pool's close can leave work behind for the one after
  // it, e.g. threads still exiting).
  const orders = permutations(pools.length)
  for (let round = -1; round < 4 * budget.runs; round++) {
    for (const i of orders[(round + 1) % orders.length]!) {
      const p = pools[i]!
      if (ended[i] !== undefined) continue
      try {
        const ms = await firstResult(p.open)
        if (typeof ms === 'string') ended[i] = unavailable(id(p), label(p), p.impl, ms)
        else if (round >= 0) runs[i]!.push(ms)
      } catch (error) {
        ended[i] = failed(id(p), label(p), p.impl, error)
      }
    }
  }
  return pools.map((p, i) => ended[i] ?? measured(id(p), label(p), p.impl, runs[i]!))
}

/** One pool's rows: each window, then the busy machine, by case key. */
async function poolRows(
  name: string,
  impl: Impl,
  open: () => Pool | string,
  budget: Budget,
  spinners: number,
): Promise<Map<number | typeof BUSY, Row>> {
  const rows = new Map<number | typeof BUSY, Row>()
  const cases: Array<{ key: number | typeof BUSY; window: number; spinners: number }> = [
    ...WINDOWS.map((window) => ({ key: window, window, spinners: 0 })),
    { key: BUSY, window: BUSY_WINDOW, spinners },
  ]
  const id = (key: number | typeof BUSY): string => `pool.${key}.${impl === 'port' ? 'portpool' : impl}`
  const label = (key: number | typeof BUSY): string =>
    key === BUSY ? `${name}, window ${BUSY_WINDOW}, ${spinners} spinning threads beside it` : `${name}, window ${key}`
  let pool: Pool | string | undefined
  try {
    pool = open()
    for (const c of cases) {
      if (typeof pool === 'string') {
        rows.set(c.key, unavailable(id(c.key), label(c.key), impl, pool))
        continue
      }
      const running = pool
      rows.set(
        c.key,
        await attempt(id(c.key), label(c.key), impl, async () =>
          measured(id(c.key), label(c.key), impl, await timedRuns(running, c.window, c.spinners, budget)),
        ),
      )
    }
    if (typeof pool === 'object') await pool.close()
  } catch (error) {
    // Opening or closing the pool failed: every row not yet measured fails with it.
    for (const c of cases) if (!rows.has(c.key)) rows.set(c.key, failed(id(c.key), label(c.key), impl, error))
  }
  return rows
}

async function run(context: Context): Promise<Group[]> {
  const { budget } = context
  const threads = availableParallelism()
  context.progress(`pool: PortPool (${threads} threads)`)
  // The busy machine: one spinning thread per core.
  const spinners = availableParallelism()
  const PortPool = await loadPortPool()
  const port = await poolRows('PortPool.run', 'port', () => portPool(PortPool, threads), budget, spinners)
  context.progress(`pool: Piscina (${threads} threads)`)
  const pisc = await poolRows('Piscina.run', 'piscina', () => piscina(threads), budget, spinners)
  context.progress(`pool: poolifier (${threads} threads)`)
  const poolf = await poolRows('poolifier FixedThreadPool.execute', 'poolifier', () => poolifier(threads), budget, spinners)
  const group = (key: number | typeof BUSY, title: string, chart: string): Group => ({
    id: `pool.${key}`,
    title,
    unit: 'tasks/s',
    better: 'higher' as const,
    subject: `pool.${key}.portpool`,
    rows: [port.get(key)!, pisc.get(key)!, poolf.get(key)!],
    poolChart: chart,
  })
  context.progress('pool: time to the first result')
  const first: Group = {
    id: 'pool.first',
    title: `Time to the first result: a new pool of ${threads} threads, then one tiny task`,
    unit: 'ms',
    better: 'lower',
    subject: 'pool.first.portpool',
    rows: await firstResultRows(
      [
        { name: 'PortPool', impl: 'port', open: () => portPool(PortPool, threads) },
        { name: 'Piscina', impl: 'piscina', open: () => piscina(threads) },
        { name: 'poolifier FixedThreadPool', impl: 'poolifier', open: () => poolifier(threads) },
        // Not a peer: Piscina whose workers also load PortPool's worker code (see there).
        {
          name: "Piscina, its workers also loading PortPool's worker code",
          impl: 'piscina',
          key: 'piscina-with-pool-worker-code',
          open: () => piscinaWithPoolWorkerCode(threads),
        },
      ],
      budget,
    ),
  }
  return [
    ...WINDOWS.map((window) =>
      group(window, `Pool round trip of a tiny task, ${window} in flight, ${threads} threads`, `${window} in flight`),
    ),
    group(
      BUSY,
      `Pool round trip on a busy machine: ${BUSY_WINDOW} in flight, ${threads} threads, ${spinners} CPU-bound threads spinning beside the pool`,
      `${BUSY_WINDOW} in flight, busy machine`,
    ),
    first,
  ]
}

export const pool: Scenario = {
  name: 'pool',
  title: '4. Pool round trip',
  summary:
    'a tiny task (returns its input) through PortPool.run, Piscina.run and poolifier FixedThreadPool.execute, same task, same thread count, 64 and 1000 tasks in flight (each case after one unmeasured round of warm-up), 64 in flight on a busy machine (one CPU-bound thread per core spinning beside the pool during each pool\'s runs), and the time from a new pool to its first result (the pools taking turns, one fresh pool each per round).',
  run,
}
