// Boot tasks: while a pool boots, its first tasks are offered to every worker that has not
// started (through each one's boot gate, whether its start was sent already or not); the first
// to start takes the oldest offer left as its boot task, and runs it before it loads
// @iocp/core's bundle and opens the ports (pool/worker/boot-task.ts). Only where no task can run beside it above the concurrency limit:
// `concurrency` >= `maxThreads`, one task per worker. Each case checks which path ran a task
// (boot-tasks.cjs's `bundleLoaded`), and that the task keeps every rule a loop's task has.
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, TaskModuleError, WorkerDiedError } from '@iocp/core'
import { destroyPools, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

const BOOT_TASKS = new URL('../fixtures/boot-tasks.cjs', import.meta.url)
const BROKEN = new URL('../fixtures/pool-broken.mjs', import.meta.url)
const BOOT_FLAKY = new URL('../fixtures/boot-flaky.cjs', import.meta.url)
const NO_BUNDLE = new URL('../fixtures/boot-no-bundle.cjs', import.meta.url)
const PERMITS = new URL('../fixtures/boot-permits.cjs', import.meta.url)
const STARTED = 0
const GATE = 1
const PACKETS = 2

afterEach(destroyPools)

interface Where {
  value: number
  threadId: number
  bundleLoaded: boolean
}

/** A pool of one worker (concurrency 1): its first task is a boot task. */
function onePool(cells = sharedCells(4), options: { abortTimeout?: number; recordTiming?: boolean } = {}) {
  return makePool({ filename: BOOT_TASKS, concurrency: 1, threads: 1, workerData: { cells }, ...options })
}

describe('boot tasks', () => {
  it("run a new pool's first task before its worker loads the bundle; the loop runs the next", async () => {
    const pool = onePool()
    const first = (await pool.run(1)) as Where
    const second = (await pool.run(2)) as Where
    expect(first).toMatchObject({ value: 1, bundleLoaded: false })
    expect(second).toMatchObject({ value: 2, bundleLoaded: true, threadId: first.threadId })
  })

  it('take one task per start, in order: the rest go through the port', async () => {
    const pool = makePool({ filename: BOOT_TASKS, concurrency: 2, threads: 2, workerData: { cells: sharedCells(4) } })
    const results = (await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(i)))) as Where[]
    expect(results.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => i))
    // At most the two starts took one each; at least one of them did (the tasks were queued
    // before either start was sent).
    const booted = results.filter((r) => !r.bundleLoaded).length
    expect(booted).toBeGreaterThanOrEqual(1)
    expect(booted).toBeLessThanOrEqual(2)
  })

  it('go to the first worker that starts, whichever it is; the others send them back', async () => {
    // Each round lets one of the two workers load the task module (boot-permits.cjs), so only
    // that one starts, and it must run the task while the other still waits. (Handed to one
    // given worker instead, the task would wait for a worker that cannot start: half the rounds.)
    for (let round = 0; round < 4; round++) {
      const cells = sharedCells(2)
      const pool = makePool({ filename: PERMITS, concurrency: 2, threads: 2, workerData: { cells } })
      const first = pool.run(round)
      await until(() => pool.stats().running === 1) // on offer to both workers, counted once
      Atomics.add(cells, 0, 1)
      Atomics.notify(cells, 0)
      expect(await first).toMatchObject({ value: round, bundleLoaded: false })
      expect(Atomics.load(cells, 1), 'the other worker started too').toBe(1)
      Atomics.add(cells, 0, 1)
      Atomics.notify(cells, 0)
      // The other worker sends its offer back, and runs the next task through its loop or as a boot task of its own.
      expect(((await pool.run(10 + round)) as { value: number }).value).toBe(10 + round)
      await pool.destroy()
    }
  })

  it('that no worker took go to the port once a loop runs, in order: none waits for a worker that is not up', async () => {
    // Three tasks at once, two workers, and only one worker lets through: it runs the first as
    // its boot task; the second, offered to both, must not wait for the other worker, and the
    // third (held meanwhile) must not go ahead of it.
    const cells = sharedCells(2)
    const pool = makePool({ filename: PERMITS, concurrency: 2, threads: 2, workerData: { cells } })
    const order: number[] = []
    const runs = [1, 2, 3].map((value) =>
      pool.run(value).then((result) => {
        order.push(value)
        return result as { value: number; bundleLoaded: boolean }
      }),
    )
    Atomics.add(cells, 0, 1)
    Atomics.notify(cells, 0)
    const results = await Promise.all(runs)
    expect(order).toEqual([1, 2, 3])
    expect(results.map((r) => r.bundleLoaded)).toEqual([false, true, true])
    expect(Atomics.load(cells, 1), 'the other worker started').toBe(1)
    Atomics.add(cells, 0, 1)
    Atomics.notify(cells, 0)
  })

  it('are handed out after the starts were sent too, until the worker has run its start', async () => {
    const pool = onePool()
    // The pool sends its start as it is made; this task comes a turn later, while the worker boots.
    await new Promise((resolve) => setImmediate(resolve))
    const first = (await pool.run(1)) as Where
    expect(first).toMatchObject({ value: 1, bundleLoaded: false })
    // Its start has run now: its gate is closed, and the next task goes through the port.
    expect(((await pool.run(2)) as Where).bundleLoaded).toBe(true)
  })

  it('answer even when the start then throws (no bundle in the worker): that start fails, and another replaces it', async () => {
    const pool = makePool({ filename: NO_BUNDLE, concurrency: 1, threads: 1 })
    const failed = new Promise<Error>((resolve) => pool.once('error', resolve))
    expect(await pool.run(1)).toBe(1)
    expect((await failed).message).toMatch(/could not start \(Error: no bundle in this worker\); another is starting/)
    // The replacement has no boot task (this task came after the first start ran): it loads the
    // bundle before the task module, and its loop runs the task.
    expect(await pool.run(2)).toBe(2)
  })

  it('are not used where a task could run beside them above the limit (concurrency < maxThreads)', async () => {
    const pool = makePool({ filename: BOOT_TASKS, concurrency: 1, maxThreads: 2, minThreads: 1, workerData: { cells: sharedCells(4) } })
    expect(((await pool.run(1)) as Where).bundleLoaded).toBe(true)
  })

  it('settle with the value, the error (its class and own properties kept) or the async result', async () => {
    const pool = onePool()
    await expect(pool.run('boom', { name: 'fail' })).rejects.toMatchObject({ name: 'RangeError', message: 'boom', code: 'E_BOOT' })
    const second = makePool({ filename: BOOT_TASKS, concurrency: 1, threads: 1 })
    expect(await second.run(21, { name: 'later' })).toEqual({ doubled: 42, bundleLoaded: false })
  })

  it('open the port for ctx.post() when the task first posts: the raw packet reaches onPacket', async () => {
    const cells = sharedCells(4)
    const pool = onePool(cells)
    expect(await pool.run({ key: 7, cell: PACKETS }, { name: 'postRaw' })).toEqual({ before: false, after: true })
    await reach(cells, PACKETS, 1)
  })

  it('count as running in stats(), except inside ctx.blocking()', async () => {
    for (const blocking of [false, true]) {
      const cells = sharedCells(4)
      const pool = onePool(cells)
      const gated = pool.run({ started: STARTED, gate: GATE, blocking }, { name: 'gated' })
      await reach(cells, STARTED, 1)
      // (The task bumps STARTED just before it enters ctx.blocking(): it may still count.)
      if (blocking) await until(() => pool.stats().running === 0)
      expect(pool.stats()).toMatchObject({ running: blocking ? 0 : 1, inFlight: 1 })
      open(cells, GATE)
      expect(await gated).toBe(false) // it ran as a boot task
      await until(() => pool.stats().inFlight === 0)
    }
  })

  it('are never a task whose payload is transferred (it could not come back): it waits for the loop', async () => {
    const pool = onePool()
    const buffer = new ArrayBuffer(1 << 16)
    new Uint8Array(buffer)[0] = 9
    expect(await pool.run({ buffer }, { name: 'bufferInfo', transferList: [buffer] })).toEqual({
      byteLength: 1 << 16,
      first: 9,
      bundleLoaded: true,
    })
    expect(buffer.byteLength).toBe(0)
  })

  it('come back with their payload when their module does not load, and run on the next start, in order', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ filename: BOOT_FLAKY, concurrency: 1, threads: 1, workerData: { cells } })
    expect(await Promise.all([pool.run('hello'), pool.run({ a: 1 }), pool.run(3)])).toEqual(['hello', { a: 1 }, 3])
    expect(Atomics.load(cells, 3)).toBe(2) // one failed load, one good: no second load in the failed worker
  })

  it('end their worker on a bug of the boot path (an outcome it cannot encode): WorkerDiedError, as in the loop', async () => {
    const pool = onePool()
    await expect(pool.run(null, { name: 'throwOdd' })).rejects.toBeInstanceOf(WorkerDiedError)
    expect(((await pool.run(6)) as Where).value).toBe(6)
  })

  it('stop counting for as long as any of their ctx.blocking() calls lasts', async () => {
    const cells = sharedCells(8)
    const pool = onePool(cells)
    const task = pool.run({ started: STARTED, gate: GATE, gate2: 4, firstDone: 5 }, { name: 'blockingTwice' })
    await reach(cells, STARTED, 1)
    await until(() => pool.stats().running === 0)
    open(cells, GATE)
    await reach(cells, 5, 1)
    expect(pool.stats().running).toBe(0) // the second is still blocking
    open(cells, 4)
    expect(await task).toBe(false)
    await until(() => pool.stats().inFlight === 0)
    expect(pool.stats().running).toBe(0)
  })

  it('record their run time, as the loop does', async () => {
    const pool = onePool(sharedCells(4), { recordTiming: true })
    expect(((await pool.run(1)) as Where).bundleLoaded).toBe(false)
    expect(pool.stats().runTime.count).toBe(1)
  })

  it('fail with WorkerDiedError when their thread dies; a new worker runs the next task', async () => {
    const pool = onePool()
    await expect(pool.run(3, { name: 'die' })).rejects.toBeInstanceOf(WorkerDiedError)
    expect(((await pool.run(4)) as Where).value).toBe(4)
  })

  it('that ignore their abort lose their worker after abortTimeout; the pool goes on', async () => {
    const cells = sharedCells(4)
    const pool = onePool(cells, { abortTimeout: 50 })
    const controller = new AbortController()
    const spinning = pool.run({ started: STARTED }, { name: 'spin', signal: controller.signal })
    await reach(cells, STARTED, 1)
    expect(pool.stats().running).toBe(1)
    controller.abort()
    await expect(spinning).rejects.toBeInstanceOf(AbortError)
    expect(((await pool.run(5)) as Where).value).toBe(5)
    await until(() => pool.stats().inFlight === 0 && pool.stats().running === 0)
  })

  it('aborted before their worker takes them never run', async () => {
    const cells = sharedCells(4)
    open(cells, GATE)
    const pool = onePool(cells)
    const controller = new AbortController()
    const first = pool.run({ started: STARTED, gate: GATE }, { name: 'gated', signal: controller.signal })
    controller.abort()
    await expect(first).rejects.toBeInstanceOf(AbortError)
    expect(((await pool.run(2)) as Where).value).toBe(2)
    await until(() => pool.stats().inFlight === 0)
    expect(Atomics.load(cells, STARTED)).toBe(0)
  })

  it('go back when the task module does not load, and fail with the pool (TaskModuleError)', async () => {
    const pool = makePool({ filename: BROKEN, concurrency: 1, threads: 1 })
    await expect(pool.run(1)).rejects.toBeInstanceOf(TaskModuleError)
    await pool.close()
  })
})
