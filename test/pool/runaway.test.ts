// A task that ignores its abort cannot hold the pool. Abort is cooperative first (the promise
// rejects at once, the task sees ctx.signal fire); a task still running `abortTimeout` ms later
// has its worker terminated: the port gives back what that worker held, a new worker replaces
// it, and neither its task slot nor its place under the concurrency limit stays taken. These
// tests use `concurrency: 1`, where a stuck slot would stall every later task.
import { afterEach, describe, expect, it } from 'vitest'
import { AbortError, CompletionPort } from '@iocp/core'
import { destroyPools, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

const STARTED = 0
const GATE = 1
const RAN = 2

const replies: CompletionPort[] = []
afterEach(async () => {
  await destroyPools()
  for (const port of replies.splice(0)) port.close()
})

describe('a task that never looks at its signal', () => {
  it('a synchronous spin: its worker is terminated and replaced, and the tasks and packets queued behind it run', async () => {
    const cells = sharedCells(4)
    const reply = new CompletionPort({ concurrency: 1 })
    replies.push(reply)
    const pool = makePool({ concurrency: 1, threads: 1, abortTimeout: 0, workerData: { cells, reply: reply.handle } })
    const controller = new AbortController()
    // 1. The only worker spins forever in JavaScript, in a task that never checks its signal.
    const spinning = pool.run({ started: STARTED }, { name: 'spin', signal: controller.signal })
    await reach(cells, STARTED, 1)
    const spinner = pool.threads.map((w) => w.threadId)
    // 2. Five tasks and a raw packet queue behind it.
    const behind = Array.from({ length: 5 }, () => pool.run({ ran: RAN }, { name: 'marker' }))
    pool.post(7, 70, 700)
    expect(pool.stats().queued).toBe(6)
    // 3. Abort: the promise rejects at once; once the grace period (0 ms) is over the worker ends.
    controller.abort()
    await expect(spinning).rejects.toBeInstanceOf(AbortError)
    // 4. A new worker takes the queued tasks: every one runs once, nothing is lost.
    expect(await Promise.all(behind)).toEqual(['ran', 'ran', 'ran', 'ran', 'ran'])
    expect(Atomics.load(cells, RAN)).toBe(5)
    // The fixture's packet handler echoes the packet to the reply port: it was handled once.
    expect(await reply.getAsync()).toMatchObject({ key: 7, bytes: 70, overlapped: 700 })
    expect(reply.stats().queued).toBe(0)
    expect(pool.threads.map((w) => w.threadId)).not.toEqual(spinner)
    // 5. No slot stays taken: nothing in flight, nothing running on the port.
    await until(() => pool.stats().inFlight === 0 && pool.stats().running === 0)
    expect(await pool.run(21)).toBe(42)
    expect(pool.stats()).toMatchObject({ inFlight: 0, queued: 0, threads: 1 })
  })

  it('an async task that awaits forever: the same, after the grace period', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, abortTimeout: 1, workerData: { cells } })
    const controller = new AbortController()
    const stuck = pool.run({ started: STARTED, gate: GATE }, { name: 'asyncIgnoringAbort', signal: controller.signal })
    await reach(cells, STARTED, 1)
    const next = pool.run(5)
    controller.abort(new Error('enough'))
    const error = await stuck.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AbortError)
    expect((error as AbortError).cause).toEqual(new Error('enough'))
    expect(await next).toBe(10)
    // Running on the port lasts until a worker's next get(): wait for the new worker to get there.
    await until(() => pool.stats().inFlight === 0 && pool.stats().running === 0)
    expect(pool.stats()).toMatchObject({ queued: 0, threads: 1 })
  })

  it('abortTimeout: Infinity keeps abort purely cooperative: the worker is never terminated', async () => {
    const cells = sharedCells(4)
    const pool = makePool({ concurrency: 1, threads: 1, abortTimeout: Infinity, workerData: { cells } })
    const controller = new AbortController()
    const stuck = pool.run({ started: STARTED, gate: GATE }, { name: 'asyncIgnoringAbort', signal: controller.signal })
    await reach(cells, STARTED, 1)
    const threads = pool.threads.map((w) => w.threadId)
    controller.abort()
    await expect(stuck).rejects.toBeInstanceOf(AbortError)
    // The task still holds its slot; releasing it is the only way on.
    expect(pool.stats().inFlight).toBe(1)
    open(cells, GATE)
    expect(await pool.run(1)).toBe(2)
    expect(pool.threads.map((w) => w.threadId)).toEqual(threads)
  })

  it('defaults to a bounded grace period', () => {
    const pool = makePool({ concurrency: 1 })
    expect(pool.options.abortTimeout).toBe(1000)
  })
})
