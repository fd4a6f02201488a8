// Workers that fail to start. A worker that dies before its loop runs (the task module throws at
// import, or exits there; the thread dies before Piscina sees it ready; it cannot even start) is
// a failed start: another start replaces it, and after 3 failed starts in a row the pool fails:
// every pending task and every later run() rejects with the error, post() throws it, and close()
// still resolves with every worker thread ended. Nothing waits forever.
//
// The failures are scripted by counters in shared memory: the task module (pool-flaky.mjs)
// counts its loads, a preload (pool-preload.cjs) counts the workers' boots, and the load or
// boot numbers in a given range fail. The first worker always starts; a task kills it
// (process.exit), so its replacement is the one that fails.
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { PoolClosedError, TaskModuleError, WorkerDiedError, type PortPool } from '@iocp/core'
import { destroyPools, followThreads, makePool, sharedCells } from '../fixtures/harness.js'

const FLAKY = new URL('../fixtures/pool-flaky.mjs', import.meta.url)
const PRELOAD = fileURLToPath(new URL('../fixtures/pool-preload.cjs', import.meta.url))
/** The cell that counts loads (or boots). */
const COUNT = 0

afterEach(destroyPools)

/** A one-worker pool whose task module's loads number `failFrom` to `failTo` fail. */
function flakyModule(failFrom: number, failTo: number, how: 'throw' | 'exit' = 'throw'): { pool: PortPool; cells: Int32Array } {
  const cells = sharedCells(2)
  const pool = makePool({
    filename: FLAKY,
    concurrency: 1,
    threads: 1,
    workerData: { cells, boot: { count: COUNT, failFrom, failTo, how, code: 9 } },
  })
  return { pool, cells }
}

/** A one-worker pool whose worker boots number `failFrom` to `failTo` fail before Piscina sees them ready. */
function flakyBoot(failFrom: number, failTo: number, how: 'throw' | 'exit'): { pool: PortPool; cells: Int32Array } {
  const cells = sharedCells(2)
  const pool = makePool({
    concurrency: 1,
    threads: 1,
    execArgv: ['--require', PRELOAD],
    workerData: { cells, preload: { count: COUNT, failFrom, failTo, how, code: 4 } },
  })
  return { pool, cells }
}

/** Kills the pool's only worker with a task, with `count` tasks queued behind it. */
async function killWorker(pool: PortPool, count: number): Promise<{ died: unknown; queued: Array<Promise<unknown>> }> {
  const dying = pool.run(7, { name: 'exit' })
  const queued = Array.from({ length: count }, (_, i) => pool.run(i))
  return { died: await dying.catch((e: unknown) => e), queued }
}

const doubled = (count: number): number[] => Array.from({ length: count }, (_, i) => 2 * i)

describe('a replacement worker that fails to start once', () => {
  it('is retried when its task module throws at import: the queued tasks complete', async () => {
    const { pool, cells } = flakyModule(2, 2)
    const errors: unknown[] = []
    pool.on('error', (error) => errors.push(error))
    const { died, queued } = await killWorker(pool, 20)
    expect(died).toBeInstanceOf(WorkerDiedError)
    expect(await Promise.all(queued)).toEqual(doubled(20))
    // Load 1: the first worker; 2: its replacement, which failed; 3: the retry.
    expect(Atomics.load(cells, COUNT)).toBe(3)
    // The failed start was reported to the 'error' listener.
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(TaskModuleError)
    expect((errors[0] as Error).cause).toMatchObject({ message: 'load 2 fails' })
    expect(await pool.run(21)).toBe(42)
  })

  it('is retried when its worker exits while the task module loads', async () => {
    const { pool, cells } = flakyModule(2, 2, 'exit')
    const errors: unknown[] = []
    pool.on('error', (error) => errors.push(error))
    const { died, queued } = await killWorker(pool, 20)
    expect(died).toMatchObject({ code: 'ERR_IOCP_WORKER_DIED', exitCode: 7 })
    expect(await Promise.all(queued)).toEqual(doubled(20))
    expect(Atomics.load(cells, COUNT)).toBe(3)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(WorkerDiedError)
    expect(errors[0]).toMatchObject({ exitCode: 9, message: expect.stringMatching(/could not start \(exited with code 9\); another is starting/) })
  })

  it('is retried when every worker Piscina boots for it dies before it is ready', async () => {
    // Boots 2 and 3 fail: Piscina's own replacement and the one it started for our start.
    const { pool } = flakyBoot(2, 3, 'exit')
    const { died, queued } = await killWorker(pool, 20)
    expect(died).toBeInstanceOf(WorkerDiedError)
    expect(await Promise.all(queued)).toEqual(doubled(20))
    expect(await pool.run(21)).toBe(42)
  })
})

describe('replacement workers that never start', () => {
  it('task module throws at every later import: pending and later tasks reject with TaskModuleError; close() resolves', async () => {
    const { pool, cells } = flakyModule(2, Infinity)
    const threads = followThreads(pool)
    const { died, queued } = await killWorker(pool, 20)
    expect(died).toBeInstanceOf(WorkerDiedError)
    for (const outcome of await Promise.allSettled(queued)) {
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason
      expect(error).toBeInstanceOf(TaskModuleError)
      expect(error.cause).toMatchObject({ message: expect.stringMatching(/^load \d fails$/) })
    }
    // Three failed starts in a row (loads 2, 3, 4), then no more.
    expect(Atomics.load(cells, COUNT)).toBe(4)
    // The pool has failed: run() rejects (never throws), post() throws, with the same error.
    const later = await pool.run(1).catch((e: unknown) => e)
    expect(later).toBeInstanceOf(TaskModuleError)
    expect(() => pool.post(1)).toThrow(TaskModuleError)
    threads.look()
    await pool.close()
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
    await expect(pool.run(1)).rejects.toBeInstanceOf(PoolClosedError)
  })

  it('workers die before they are ready: pending tasks reject with WorkerDiedError ("could not start"); close() resolves', async () => {
    const { pool } = flakyBoot(2, Infinity, 'throw')
    const threads = followThreads(pool)
    const { died, queued } = await killWorker(pool, 20)
    expect(died).toMatchObject({ exitCode: 7 })
    for (const outcome of await Promise.allSettled(queued)) {
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason
      expect(error).toBeInstanceOf(WorkerDiedError)
      expect(error.message).toMatch(/could not start \(Error: boot \d+ fails\); no worker could start \(3 failed starts in a row\)/)
      expect(error.cause).toMatchObject({ message: expect.stringMatching(/^boot \d+ fails$/) })
    }
    await expect(pool.run(1)).rejects.toBeInstanceOf(WorkerDiedError)
    threads.look()
    await pool.destroy()
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
  })
})
