// The concurrency rule holds across the whole pool: no more than `concurrency` tasks run at
// once whatever the number of workers, except while tasks are inside ctx.blocking(); an async
// task holds its place until it settles unless its awaits are inside ctx.blocking(). Each task
// counts itself in a shared cell (cells[RUNNING]) and records the most seen at once
// (cells[MAX]); gates (cells[GATE]) hold tasks in place while the test looks.
import { afterEach, describe, expect, it } from 'vitest'
import { destroyPools, makePool, open, reach, sharedCells, until } from '../fixtures/harness.js'

const STARTED = 0
const GATE = 1
const RUNNING = 2
const MAX = 3
const STARTED_2 = 4
const GATE_2 = 5

afterEach(destroyPools)

describe('concurrency across workers', () => {
  it('never runs more than `concurrency` tasks at once, with more workers than that', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 3, threads: 6, workerData: { cells } })
    // 1. Ten tasks that hold their place until the gate opens.
    const gated = Array.from({ length: 10 }, () =>
      pool.run({ started: STARTED, gate: GATE, running: RUNNING, max: MAX }, { name: 'gated' }),
    )
    // 2. Three start; the other three workers sit idle in get() while seven tasks stay queued.
    await reach(cells, STARTED, 3)
    await until(() => pool.stats().waiting === 3)
    const held = pool.stats()
    expect(held.running).toBe(3)
    expect(held.queued).toBe(7)
    expect(Atomics.load(cells, STARTED)).toBe(3)
    expect(Atomics.load(cells, MAX)).toBe(3)
    // 3. Open the gate: everything runs, in waves of at most three.
    open(cells, GATE)
    expect(await Promise.all(gated)).toEqual(Array(10).fill('released'))
    // 4. And a stream of short tasks never pushes the count above three either.
    await Promise.all(
      Array.from({ length: 3000 }, () => pool.run({ running: RUNNING, max: MAX, spins: 2000 }, { name: 'busy' })),
    )
    expect(Atomics.load(cells, MAX)).toBe(3)
    expect(Atomics.load(cells, RUNNING)).toBe(0)
  })

  it('lets tasks inside ctx.blocking() stop counting, so more start than `concurrency`', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 1, threads: 4, workerData: { cells } })
    // Four tasks that block inside ctx.blocking(): all four run at once on a pool of concurrency 1.
    const blocking = Array.from({ length: 4 }, () =>
      pool.run({ started: STARTED, gate: GATE, blocking: true }, { name: 'gated' }),
    )
    await reach(cells, STARTED, 4)
    // (A task bumps STARTED just before it enters ctx.blocking(): the last one may still count.)
    await until(() => pool.stats().running === 0)
    open(cells, GATE)
    expect(await Promise.all(blocking)).toEqual(Array(4).fill('released'))
  })

  it('counts a task that blocks outside ctx.blocking(): the next one waits', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    const first = pool.run({ started: STARTED, gate: GATE }, { name: 'gated' })
    const second = pool.run({ started: STARTED_2, gate: GATE_2 }, { name: 'gated' })
    await reach(cells, STARTED, 1)
    await until(() => pool.stats().waiting === 1)
    // The second worker is idle, yet the second task stays queued: the first holds the only place.
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1 })
    expect(Atomics.load(cells, STARTED_2)).toBe(0)
    open(cells, GATE)
    open(cells, GATE_2)
    expect(await Promise.all([first, second])).toEqual(['released', 'released'])
  })
})

describe('async tasks and the limit', () => {
  it('an async task holds its worker and its place until it settles', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    const first = pool.run({ started: STARTED, gate: GATE }, { name: 'asyncGated' })
    const second = pool.run({ started: STARTED_2, gate: GATE_2 }, { name: 'asyncGated' })
    await reach(cells, STARTED, 1)
    await until(() => pool.stats().waiting === 1)
    expect(pool.stats()).toMatchObject({ running: 1, queued: 1 })
    expect(Atomics.load(cells, STARTED_2)).toBe(0)
    open(cells, GATE)
    expect(await first).toBe('async released')
    await reach(cells, STARTED_2, 1)
    open(cells, GATE_2)
    expect(await second).toBe('async released')
  })

  it('an async task that awaits inside ctx.blocking() lets the next task start', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 1, threads: 2, workerData: { cells } })
    const first = pool.run({ started: STARTED, gate: GATE, blocking: true }, { name: 'asyncGated' })
    const second = pool.run({ started: STARTED_2, gate: GATE_2 }, { name: 'asyncGated' })
    // Both run although the concurrency is 1: the first is waiting inside ctx.blocking().
    await reach(cells, STARTED, 1)
    await reach(cells, STARTED_2, 1)
    open(cells, GATE_2)
    expect(await second).toBe('async released')
    open(cells, GATE)
    expect(await first).toBe('async released')
  })
})

describe('thread scaling', () => {
  it('starts threads up to maxThreads when tasks queue, and lets idle ones go down to minThreads', async () => {
    const cells = sharedCells(8)
    const pool = makePool({ concurrency: 3, minThreads: 1, maxThreads: 3, idleTimeout: 0, workerData: { cells } })
    expect(pool.options).toMatchObject({ minThreads: 1, maxThreads: 3 })
    const gated = Array.from({ length: 3 }, () => pool.run({ started: STARTED, gate: GATE }, { name: 'gated' }))
    // Three tasks can only all start on three workers.
    await reach(cells, STARTED, 3)
    expect(pool.stats().threads).toBe(3)
    open(cells, GATE)
    await Promise.all(gated)
    // Idle above minThreads: the extra workers leave.
    await until(() => pool.stats().threads === 1)
    expect(await pool.run(4)).toBe(8)
  })
})
