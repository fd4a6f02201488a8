/**
 * The pools of scenario 4 behind one small interface: Piscina 5 and poolifier's
 * `FixedThreadPool` as peers, and @iocp/core's PortPool when it is exported. Each runs the tiny
 * echo task on the same number of threads.
 */
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { FixedThreadPool } from 'poolifier'

/** A pool reduced to what the scenario drives. */
export interface Pool {
  run(input: number): Promise<number>
  close(): Promise<void>
}

const echoModule = fileURLToPath(new URL('../tasks/echo.cjs', import.meta.url))
const echoWithPoolWorkerCode = fileURLToPath(new URL('../tasks/echo-with-pool-worker-code.cjs', import.meta.url))
const poolifierWorker = fileURLToPath(new URL('./echo-poolifier.js', import.meta.url))

export function piscina(threads: number): Pool {
  const pool = new Piscina<number, number>({ filename: echoModule, minThreads: threads, maxThreads: threads })
  return { run: (input) => pool.run(input), close: () => pool.destroy() }
}

/**
 * Piscina as {@link piscina}, whose workers also load PortPool's worker code before their
 * first task (../tasks/echo-with-pool-worker-code.cts): a reference row for the time to the
 * first result, not a peer.
 */
export function piscinaWithPoolWorkerCode(threads: number): Pool {
  const pool = new Piscina<number, number>({ filename: echoWithPoolWorkerCode, minThreads: threads, maxThreads: threads })
  return { run: (input) => pool.run(input), close: () => pool.destroy() }
}

/**
 * How long poolifier's destroy() may take. Now and then it never settles (seen about once in a
 * dozen destroys of a fresh pool, in `iocp-bench --only pool`): its workers are unreferenced, so
 * the process used to end right there, silently. Closing is not measured, so the bench stops
 * waiting, says so, and goes on (the workers end with the process).
 */
const POOLIFIER_DESTROY_MS = 5_000

export function poolifier(threads: number): Pool {
  const pool = new FixedThreadPool<number, number>(threads, poolifierWorker)
  const close = async (): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const gaveUp = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), POOLIFIER_DESTROY_MS)
    })
    const outcome = await Promise.race([pool.destroy().then(() => 'done' as const), gaveUp])
    clearTimeout(timer)
    if (outcome === 'timeout') {
      process.stderr.write(`iocp-bench: poolifier's destroy() did not settle within ${POOLIFIER_DESTROY_MS} ms; going on\n`)
    }
  }
  return { run: (input) => pool.execute(input), close }
}

/** The shape of @iocp/core's PortPool that the scenario uses. */
interface PortPoolLike {
  run(input: unknown): Promise<unknown>
  close(): Promise<void>
}
export type PortPoolClass = new (options: { filename: string; concurrency: number; threads: number }) => PortPoolLike

/**
 * @iocp/core's PortPool class, or the reason there is none: the export is looked up at run
 * time, so the bench builds and runs before PortPool lands. Loaded once, before any timing: a
 * pool's time to its first result counts its constructor, not an import() (Piscina's import is
 * static, outside every timing, too).
 */
export async function loadPortPool(): Promise<PortPoolClass | string> {
  const core = (await import('@iocp/core')) as Record<string, unknown>
  const PortPool = core['PortPool'] as PortPoolClass | undefined
  return typeof PortPool === 'function' ? PortPool : 'PortPool not available: @iocp/core does not export it yet'
}

/** A PortPool on `threads` threads (concurrency = threads), or the reason there is none (see {@link loadPortPool}). */
export function portPool(PortPool: PortPoolClass | string, threads: number): Pool | string {
  if (typeof PortPool === 'string') return PortPool
  const pool = new PortPool({ filename: echoModule, concurrency: threads, threads })
  return { run: (input) => pool.run(input) as Promise<number>, close: () => pool.close() }
}
