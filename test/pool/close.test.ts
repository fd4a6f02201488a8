// close(): refuses new work at once, lets queued and running tasks finish, wakes the workers
// blocked in the port's get(), ends them and resolves. destroy(): rejects what is queued and
// running, and stops now. Neither hangs: not with idle workers blocked in native code, not with
// a task that never finishes (closeTimeout) or spins in JavaScript forever, not with a worker
// that died (even while close() waits), not with a task aborted while it runs, not when called
// twice or together. Once either resolves, every worker thread of the pool has exited.
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, PoolClosedError, WorkerDiedError } from '@iocp/core'
import { destroyPools, followThreads, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

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

describe('close() and destroy() never hang', () => {
  it('destroy() ends a worker spinning in JavaScript forever', async () => {
    const cells = sharedCells(1)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    const threads = followThreads(pool)
    const spinning = pool.run({ started: STARTED }, { name: 'spin' }).catch((e: unknown) => e)
    await reach(cells, STARTED, 1)
    const queued = pool.run(1).catch((e: unknown) => e)
    await pool.destroy()
    expect(await spinning).toBeInstanceOf(PoolClosedError)
    expect(await queued).toBeInstanceOf(PoolClosedError)
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
  })

  it('close() ends a worker spinning forever once closeTimeout expires', async () => {
    const cells = sharedCells(1)
    const pool = makePool({ concurrency: 1, threads: 1, closeTimeout: 0, workerData: { cells } })
    const threads = followThreads(pool)
    const spinning = pool.run({ started: STARTED }, { name: 'spin' }).catch((e: unknown) => e)
    await reach(cells, STARTED, 1)
    await pool.close()
    const error = await spinning
    expect(error).toBeInstanceOf(PoolClosedError)
    expect((error as Error).message).toMatch(/closeTimeout/)
    expect(threads.running).toBe(0)
  })

  it('close() replaces a worker that dies while it waits, so the queued tasks still complete', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const threads = followThreads(pool)
    // 1. The only worker runs a task that will exit its thread; ten tasks queue behind it.
    const dying = pool.run({ started: STARTED, gate: GATE, code: 3 }, { name: 'gatedExit' }).catch((e: unknown) => e)
    await reach(cells, STARTED, 1)
    const queued = Array.from({ length: 10 }, (_, i) => pool.run(i))
    // 2. close() waits for them; the worker dies meanwhile.
    const closing = pool.close()
    open(cells, GATE)
    expect(await dying).toBeInstanceOf(WorkerDiedError)
    // 3. Its replacement runs the queued tasks, and close() resolves.
    expect(await Promise.all(queued)).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i))
    threads.look()
    await closing
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
    expect(threads.seen).toBeGreaterThanOrEqual(2)
  })

  it('close() with a worker that died and was replaced before it was called', async () => {
    const pool = makePool({ concurrency: 2, threads: 2 })
    const threads = followThreads(pool)
    await expect(pool.run(5, { name: 'exit' })).rejects.toBeInstanceOf(WorkerDiedError)
    expect(await pool.run(2)).toBe(4)
    threads.look()
    await pool.close()
    expect(threads.running).toBe(0)
  })

  it('close() waits for a task aborted while it runs, until it returns', async () => {
    const cells = sharedCells(3)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const threads = followThreads(pool)
    const controller = new AbortController()
    const running = pool.run({ started: STARTED, gate: GATE, saw: 2 }, { name: 'syncAbortable', signal: controller.signal })
    await reach(cells, STARTED, 1)
    controller.abort()
    await expect(running).rejects.toBeInstanceOf(AbortError)
    let closed = false
    const closing = pool.close().then(() => {
      closed = true
    })
    // The aborted task still holds its worker: close() cannot end it yet...
    await until(() => pool.stats().inFlight === 1)
    expect(closed).toBe(false)
    // ...and resolves once it returns.
    open(cells, GATE)
    await closing
    expect(Atomics.load(cells, 2)).toBe(1)
    expect(threads.running).toBe(0)
  })

  it('destroy() ends a task aborted while it runs, still blocked', async () => {
    const cells = sharedCells(3)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const threads = followThreads(pool)
    const controller = new AbortController()
    const running = pool.run({ started: STARTED, gate: GATE, saw: 2 }, { name: 'syncAbortable', signal: controller.signal })
    await reach(cells, STARTED, 1)
    controller.abort()
    await expect(running).rejects.toBeInstanceOf(AbortError)
    await pool.destroy()
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
  })

  it.each([
    ['close(), close()', ['close', 'close']],
    ['close(), then destroy() once it resolved', ['close', 'destroy']],
    ['destroy(), then close() once it resolved', ['destroy', 'close']],
    ['destroy(), destroy()', ['destroy', 'destroy']],
  ] as const)('%s: each resolves, run() rejects after each', async (_, calls) => {
    const pool = makePool({ concurrency: 1, threads: 2 })
    const threads = followThreads(pool)
    expect(await pool.run(1)).toBe(2)
    for (const call of calls) {
      await pool[call]()
      let promise: Promise<unknown> | undefined
      expect(() => {
        promise = pool.run(1)
      }).not.toThrow()
      await expect(promise).rejects.toBeInstanceOf(PoolClosedError)
      expect(() => pool.post(1)).toThrow(PoolClosedError)
    }
    expect(pool.threads).toEqual([])
    expect(threads.running).toBe(0)
  })
})
