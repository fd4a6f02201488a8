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
const poolifierWorker = fileURLToPath(new URL('./echo-poolifier.js', import.meta.url))

export function piscina(threads: number): Pool {
  const pool = new Piscina<number, number>({ filename: echoModule, minThreads: threads, maxThreads: threads })
  return { run: (input) => pool.run(input), close: () => pool.destroy() }
}

export function poolifier(threads: number): Pool {
  const pool = new FixedThreadPool<number, number>(threads, poolifierWorker)
  return { run: (input) => pool.execute(input), close: () => pool.destroy() }
}

/** The shape of @iocp/core's PortPool that the scenario uses. */
interface PortPoolLike {
  run(input: unknown): Promise<unknown>
  close(): Promise<void>
}
type PortPoolClass = new (options: { filename: string; concurrency: number; threads: number }) => PortPoolLike

/**
 * A PortPool on `threads` threads (concurrency = threads), or the reason there is none: the
 * export is looked up at run time, so the bench builds and runs before PortPool lands.
 */
export async function portPool(threads: number): Promise<Pool | string> {
  const core = (await import('@iocp/core')) as Record<string, unknown>
  const PortPool = core['PortPool'] as PortPoolClass | undefined
  if (typeof PortPool !== 'function') return 'PortPool not available: @iocp/core does not export it yet'
  const pool = new PortPool({ filename: echoModule, concurrency: threads, threads })
  return { run: (input) => pool.run(input) as Promise<number>, close: () => pool.close() }
}
