// close(): refuses new work at once, lets queued and running tasks finish, wakes the workers
// blocked in the port's get(), ends them and resolves. destroy(): rejects what is queued and
// running, and stops now. Neither hangs: not with idle workers blocked in native code, not with
// a task that never finishes (closeTimeout), not when called twice or together.
import { afterEach, describe, expect, it } from 'vitest'
import { PoolClosedError } from '@iocp/core'
import { destroyPools, makePool, open, reach, sharedCells, until } from './fixtures/pool-harness.js'

const STARTED = 0
const GATE = 1

afterEach(destroyPools)

describe('close()', () => {
  it('finishes the tasks pending when it is called, refusing new ones meanwhile', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    // 1. One task holds the only place; twenty queue behind it.
    const holder = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const queued = Array.from({ length: 20 }, (_, i) => pool.run(i))
    // 2. close(): from now on run() and post() are refused...
    const closing = pool.close()
    await expect(pool.run(1)).rejects.toBeInstanceOf(PoolClosedError)
    expect(() => pool.post(1)).toThrow(PoolClosedError)
    // 3. ...but what was pending finishes once the holder lets go.
    open(cells, GATE)
    expect(await holder).toBe('released')
    expect(await Promise.all(queued)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i))
    await closing
    // 4. Every worker ended.
    expect(pool.threads).toEqual([])
    expect(pool.stats().threads).toBe(0)
  })

  it('resolves with idle workers blocked in get(), and is idempotent', async () => {
    const pool = makePool({ concurrency: 2, threads: 4 })
    expect(await pool.run(1)).toBe(2)
    await until(() => pool.stats().waiting === 4)
    const closed = new Promise((resolve) => pool.once('close', resolve))
    const first = pool.close()
    expect(pool.close()).toBe(first)
    await first
    await closed
    expect(pool.threads).toEqual([])
  })

  it('handles the raw packets still queued before the workers end', async () => {
    const { CompletionPort } = await import('@iocp/core')
    const reply = new CompletionPort({ concurrency: 1 })
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells, reply: reply.handle } })
    const holder = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    for (let key = 1; key <= 5; key++) pool.post(key)
    const closing = pool.close()
    open(cells, GATE)
    await holder
    await closing
    expect(reply.getMany(10, 0).map((p) => p.key)).toEqual([1, 2, 3, 4, 5])
    reply.close()
  })

  it('ends a task that never finishes after closeTimeout, rejecting it with PoolClosedError', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, closeTimeout: 0, workerData: { cells } })
    const stuck = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const outcome = stuck.catch((e: unknown) => e)
    await pool.close()
    const error = await outcome
    expect(error).toBeInstanceOf(PoolClosedError)
    expect((error as Error).message).toMatch(/closeTimeout/)
  })
})

describe('destroy()', () => {
  it('rejects queued and running tasks with PoolClosedError and stops now', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const queued = Array.from({ length: 10 }, (_, i) => pool.run(i))
    const settled = Promise.allSettled([running, ...queued])
    await pool.destroy()
    for (const outcome of await settled) {
      expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'ERR_IOCP_POOL_CLOSED' } })
    }
    expect(pool.threads).toEqual([])
    await expect(pool.run(1)).rejects.toBeInstanceOf(PoolClosedError)
  })

  it('takes over a close() in progress; both resolve', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const outcome = running.catch((e: unknown) => e)
    const closing = pool.close()
    const destroying = pool.destroy()
    await Promise.all([closing, destroying])
    expect(await outcome).toBeInstanceOf(PoolClosedError)
  })
})
