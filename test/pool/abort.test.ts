// Cancellation with an AbortSignal. Queued: the task never runs and rejects with AbortError.
// Running: the promise rejects with AbortError at once, while the task, which keeps its worker
// (here with abortTimeout: Infinity; runaway.test.ts covers the grace period), sees the abort through ctx.aborted / ctx.signal and reports what it saw
// in a shared cell.
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError } from '@iocp/core'
import { destroyPools, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

const STARTED = 0
const GATE = 1
const SAW = 2
const RAN = 3

afterEach(destroyPools)

describe('abort while queued', () => {
  it('never runs the task, and rejects it with AbortError at once', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    // 1. The only worker is held by a gated task.
    const holder = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    // 2. A second task queues behind it; abort it while it waits.
    const controller = new AbortController()
    const queued = pool.run({ ran: RAN }, { name: 'marker', signal: controller.signal })
    expect(pool.stats().queued).toBe(1)
    controller.abort('changed my mind')
    const error = await queued.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AbortError)
    expect(error).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'changed my mind' })
    // 3. Release the holder; the worker then dequeues the aborted task and skips it.
    open(cells, GATE)
    expect(await holder).toBe('released')
    expect(await pool.run({ ran: RAN }, { name: 'marker' })).toBe('ran')
    expect(Atomics.load(cells, RAN)).toBe(1)
    await until(() => pool.stats().inFlight === 0)
    expect(pool.completed).toBe(2)
  })

  it('rejects at once, without queueing anything, when the signal is already aborted', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, workerData: { cells } })
    const signal = AbortSignal.abort()
    await expect(pool.run({ ran: RAN }, { name: 'marker', signal })).rejects.toBeInstanceOf(AbortError)
    expect(pool.stats().inFlight).toBe(0)
    expect(await pool.run({ ran: RAN }, { name: 'marker' })).toBe('ran')
    expect(Atomics.load(cells, RAN)).toBe(1)
  })

  it('skips aborted tasks among many, and runs the rest', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const holder = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    const controllers = Array.from({ length: 200 }, () => new AbortController())
    const runs = controllers.map((c) => pool.run({ ran: RAN }, { name: 'marker', signal: c.signal }))
    const settled = Promise.allSettled(runs)
    controllers.forEach((c, i) => i % 2 === 0 && c.abort())
    open(cells, GATE)
    await holder
    const outcomes = await settled
    outcomes.forEach((outcome, i) => {
      if (i % 2 === 0) expect(outcome).toMatchObject({ status: 'rejected', reason: { name: 'AbortError' } })
      else expect(outcome).toEqual({ status: 'fulfilled', value: 'ran' })
    })
    expect(Atomics.load(cells, RAN)).toBe(100)
  })
})

describe('abort while running', () => {
  it('rejects a synchronous task at once; the task sees ctx.aborted and ctx.signal.aborted', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, abortTimeout: Infinity, workerData: { cells } })
    const controller = new AbortController()
    const running = pool.run({ started: STARTED, gate: GATE, saw: SAW }, { name: 'syncAbortable', signal: controller.signal })
    // 1. The task runs, blocked on the gate.
    await reach(cells, STARTED, 1)
    // 2. Abort: the promise rejects now, although the task is still blocked.
    controller.abort()
    await expect(running).rejects.toBeInstanceOf(AbortError)
    expect(Atomics.load(cells, SAW)).toBe(0)
    // 3. Let the task go on: it finds itself aborted (1), and its result is dropped.
    open(cells, GATE)
    await reach(cells, SAW, 1)
    expect(Atomics.load(cells, SAW)).toBe(1)
    // 4. Its worker was not killed: it runs the next task.
    const threads = pool.threads.map((w) => w.threadId)
    expect(await pool.run(5)).toBe(10)
    expect(pool.threads.map((w) => w.threadId)).toEqual(threads)
  })

  it("rejects an async task at once; the task's signal fires its abort event", async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, abortTimeout: Infinity, workerData: { cells } })
    const controller = new AbortController()
    const running = pool.run({ started: STARTED, saw: SAW }, { name: 'asyncAbortable', signal: controller.signal })
    await reach(cells, STARTED, 1)
    controller.abort(new Error('stop'))
    const error = await running.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AbortError)
    expect((error as AbortError).cause).toEqual(new Error('stop'))
    // The task was waiting for the 'abort' event of ctx.signal: it arrives, with an AbortError reason.
    await reach(cells, SAW, 1)
    expect(Atomics.load(cells, SAW)).toBe(1)
    expect(await pool.run(6)).toBe(12)
    await until(() => pool.stats().inFlight === 0)
  })
})
