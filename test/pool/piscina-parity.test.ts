// What a Piscina user expects of PortPool, row by row (see docs/migrating-from-piscina.md):
// concurrentTasksPerWorker, transferList, SharedArrayBuffers, a task module of promised
// handlers, close({ force }), the thread getters, Symbol.dispose, minThreads: 0, the atomics
// options, and error messages in Piscina's words with our codes.
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, PoolClosedError, PortPool, QueueFullError } from '@iocp/core'
import { destroyPools, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

const STARTED = 0
const GATE = 1

afterEach(destroyPools)

describe('concurrentTasksPerWorker', () => {
  it("interleaves one worker's async tasks, up to the limit; the rest wait in the queue", async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, concurrentTasksPerWorker: 5, workerData: { cells } })
    // 1. Seven async tasks on one worker: five start (each awaits the gate), two stay queued.
    const runs = Array.from({ length: 7 }, () => pool.run({ started: STARTED, gate: GATE }, { name: 'asyncGated' }))
    await reach(cells, STARTED, 5)
    await until(() => pool.stats().queued === 2)
    expect(Atomics.load(cells, STARTED)).toBe(5)
    // 2. While they only await, the worker does not count as running on the port.
    await until(() => pool.stats().running === 0)
    // 3. Open the gate: all seven finish.
    open(cells, GATE)
    expect(await Promise.all(runs)).toEqual(Array(7).fill('async released'))
    expect(Atomics.load(cells, STARTED)).toBe(7)
  })

  it('with the default (1), an async task holds its worker until it settles', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    expect(pool.options.concurrentTasksPerWorker).toBe(1)
    const runs = [0, 1].map(() => pool.run({ started: STARTED, gate: GATE }, { name: 'asyncGated' }))
    await reach(cells, STARTED, 1)
    expect(pool.stats()).toMatchObject({ queued: 1, running: 1 })
    open(cells, GATE)
    expect(await Promise.all(runs)).toEqual(['async released', 'async released'])
  })

  it('still runs synchronous tasks and raw results in order of the queue', async () => {
    const pool = makePool({ concurrency: 2, threads: 2, concurrentTasksPerWorker: 3 })
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? pool.run(i) : pool.run(i, { name: 'asyncEcho' }))))
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 2 * i : i)))
  })
})

describe('transferList', () => {
  it('transfers an ArrayBuffer (zero-copy: the sender’s buffer is detached)', async () => {
    const pool = makePool({ concurrency: 1 })
    const buffer = new ArrayBuffer(1 << 20)
    new Uint8Array(buffer)[0] = 7
    const info = await pool.run({ buffer }, { name: 'bufferInfo', transferList: [buffer] })
    expect(info).toEqual({ byteLength: 1 << 20, first: 7 })
    expect(buffer.byteLength).toBe(0)
  })

  it('copies a typed array listed there (postMessage cannot transfer a view)', async () => {
    const pool = makePool({ concurrency: 1 })
    const bytes = new Uint8Array([1, 2, 3])
    expect(await pool.run(bytes, { name: 'echo', transferList: [bytes] })).toEqual(new Uint8Array([1, 2, 3]))
    expect(bytes.byteLength).toBe(3)
  })
})

describe('SharedArrayBuffer', () => {
  it('in a payload is shared with the task, not copied', async () => {
    const shared = new Int32Array(new SharedArrayBuffer(8))
    const pool = makePool({ concurrency: 1 })
    expect(await pool.run({ shared, index: 1, value: 42 }, { name: 'writeShared' })).toBe(true)
    expect(Atomics.load(shared, 1)).toBe(42)
  })

  it('in a result is shared with the caller (what the caller writes, the task reads)', async () => {
    const pool = makePool({ concurrency: 1, threads: 1 })
    const kept = (await pool.run(undefined, { name: 'makeShared' })) as Int32Array
    expect(kept.buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(Atomics.load(kept, 0)).toBe(1)
    Atomics.store(kept, 1, 99)
    // The same worker (threads: 1) reads its own copy of the array: it sees the caller's write.
    expect(await pool.run(1, { name: 'readKept' })).toBe(99)
  })

  it('a payload neither path can carry is still refused, naming why', async () => {
    const pool = makePool({ concurrency: 1 })
    await expect(pool.run({ shared: new SharedArrayBuffer(4), f() {} }, { name: 'echo' })).rejects.toThrow(
      /payload cannot be cloned/,
    )
  })
})

describe('a task module that exports promises of its handlers (delayed start)', () => {
  it('awaits them once per worker, then runs the handlers', async () => {
    const pool = makePool({ concurrency: 1, threads: 1, filename: new URL('../fixtures/pool-delayed.mjs', import.meta.url) })
    const first = (await pool.run(1)) as { value: number; setUps: number }
    expect(first.value).toBe(2)
    expect(await pool.run(5, { name: 'triple' })).toBe(15)
    const again = (await pool.run(2)) as { value: number; setUps: number }
    expect(again).toMatchObject({ value: 3, setUps: first.setUps })
  })
})

describe('close({ force: true })', () => {
  it('rejects the queued tasks at once, lets the running one finish, then closes', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const queued = [pool.run(1), pool.run(2), pool.run(3)]
    const closed = pool.close({ force: true })
    const outcomes = await Promise.allSettled(queued)
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected')
      const reason = (outcome as PromiseRejectedResult).reason as AbortError
      expect(reason).toBeInstanceOf(AbortError)
      expect(reason).toMatchObject({ message: 'The task has been aborted', cause: 'pool is closed', code: 'ABORT_ERR' })
    }
    await expect(pool.run(4)).rejects.toBeInstanceOf(PoolClosedError)
    open(cells, GATE)
    expect(await running).toBe('released')
    await closed
    expect(pool.stats().threads).toBe(0)
  })

  it('refuses options that are not { force: boolean }', async () => {
    const pool = makePool({ concurrency: 1 })
    await expect(pool.close(5 as never)).rejects.toThrow(/options must be an object like \{ force: boolean \}/)
    await expect(pool.close({ force: 'yes' as never })).rejects.toThrow(/options\.force must be a boolean/)
  })
})

describe("Piscina's getters and disposal", () => {
  it('minThreads, maxThreads and idleThreads', async () => {
    const pool = makePool({ concurrency: 1, minThreads: 1, maxThreads: 3 })
    expect(pool.minThreads).toBe(1)
    expect(pool.maxThreads).toBe(3)
    expect(await pool.run(1)).toBe(2)
    await until(() => pool.idleThreads === 1)
    await pool.close()
    expect(pool.idleThreads).toBe(0)
  })

  it('Symbol.dispose starts a graceful close', async () => {
    const pool = makePool({ concurrency: 1 })
    const closed = new Promise((resolve) => pool.once('close', resolve))
    const result = pool.run(4)
    pool[Symbol.dispose]()
    await expect(pool.run(1)).rejects.toBeInstanceOf(PoolClosedError)
    expect(await result).toBe(8)
    await closed
  })
})

describe('minThreads: 0 (scale to zero)', () => {
  it('starts with no worker; run() starts one', async () => {
    const pool = makePool({ concurrency: 1, minThreads: 0, maxThreads: 2 })
    expect(pool.stats().threads).toBe(0)
    expect(await pool.run(3)).toBe(6)
    expect(await Promise.all([pool.run(1), pool.run(2)])).toEqual([2, 4])
  })

  it('post() with no worker starts one, which handles the packet', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, minThreads: 0, maxThreads: 1, idleTimeout: Infinity, workerData: { cells } })
    expect(pool.stats().threads).toBe(0)
    const failed = new Promise((resolve) => pool.once('packetError', resolve))
    // Key 13: the fixture's handler throws 'unlucky', which proves a worker ran it.
    pool.post(13)
    expect(await failed).toMatchObject({ message: 'unlucky', code: 'E13' })
    expect(pool.stats().threads).toBe(1)
    expect(await pool.run(5)).toBe(10)
  })
})

describe('time to the first result', () => {
  it('starts all minThreads workers at once, as Piscina does', async () => {
    const pool = makePool({ concurrency: 2, threads: 3 })
    expect(pool.threads.length).toBe(3)
    expect(await pool.run(1)).toBe(2)
    await until(() => pool.stats().threads === 3)
    expect(await Promise.all([pool.run(1), pool.run(2), pool.run(3)])).toEqual([2, 4, 6])
  })
})

describe('atomics / useAtomics', () => {
  it('are accepted and have no effect (the port has its own wake-up)', async () => {
    const a = makePool({ concurrency: 1, atomics: 'sync' })
    const b = makePool({ concurrency: 1, useAtomics: false })
    const c = makePool({ concurrency: 1, atomics: 'disabled' })
    expect(await Promise.all([a.run(1), b.run(2), c.run(3)])).toEqual([2, 4, 6])
  })
})

describe("errors in Piscina's words, with our codes", () => {
  it('destroyed pool: "Terminating worker thread"', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const destroyed = pool.destroy()
    open(cells, GATE)
    const error = await running.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PoolClosedError)
    expect((error as Error).message).toMatch(/^Terminating worker thread/)
    expect(error).toMatchObject({ code: 'ERR_IOCP_POOL_CLOSED' })
    await destroyed
  })

  it('closed pool: "The task has been aborted" (queue is being terminated)', async () => {
    const pool = makePool({ concurrency: 1 })
    await pool.close()
    const error = await pool.run(1).catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/^The task has been aborted \(queue is being terminated\)/)
    expect(error).toMatchObject({ code: 'ERR_IOCP_POOL_CLOSED' })
  })

  it('full queue: "Task queue is at limit"', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, maxQueue: 1, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const queued = pool.run(1)
    const error = await pool.run(2).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(QueueFullError)
    expect((error as Error).message).toMatch(/^Task queue is at limit/)
    expect(error).toMatchObject({ code: 'ERR_IOCP_QUEUE_FULL' })
    open(cells, GATE)
    await running
    expect(await queued).toBe(2)
  })

  it('close timeout: "Close operation timed out"', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, closeTimeout: 0, workerData: { cells } })
    const running = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const closed = pool.close()
    const error = await running.catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/^Close operation timed out/)
    expect(error).toMatchObject({ code: 'ERR_IOCP_POOL_CLOSED' })
    open(cells, GATE)
    await closed
  })

  it('aborted task: "The task has been aborted", as Piscina\'s AbortError', async () => {
    const pool = makePool({ concurrency: 1 })
    const error = await pool.run(1, { signal: AbortSignal.abort() }).catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'AbortError', message: 'The task has been aborted', code: 'ABORT_ERR' })
  })
})

describe('PortPool and Piscina side by side', () => {
  it('a new PortPool needs only what a new Piscina needs', async () => {
    const pool = new PortPool({ filename: new URL('../fixtures/pool-tasks.mjs', import.meta.url).href })
    try {
      expect(await pool.run(2)).toBe(4)
    } finally {
      await pool.destroy()
    }
  })
})
