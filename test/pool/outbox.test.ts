// The tasks that run() admits in one turn are posted together at its end (pool/main/outbox.ts).
// What a caller can observe stays as if each had been posted at once: submission order (also
// across a raw pool.post()), queued counts, and what close() and destroy() do to them.
import { afterEach, describe, expect, it } from 'vitest'
import { destroyPools, makePool, sharedCells } from '../fixtures/harness.js'

afterEach(destroyPools)

const SEQ = 0
const N = 600 // more than one postMany batch (256)

/** The log that the `record` task and onPacket's key 30 append to. */
function log(cells: Int32Array): number[] {
  return Array.from(cells.subarray(SEQ + 1, SEQ + 1 + Atomics.load(cells, SEQ)))
}

describe('tasks submitted in one turn', () => {
  it('run in submission order, across batches, on one worker', async () => {
    const cells = sharedCells(N + 8)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const runs = Array.from({ length: N }, (_, value) => pool.run({ seq: SEQ, value }, { name: 'record' }))
    expect(pool.stats().queued + pool.stats().running).toBe(N)
    await Promise.all(runs)
    expect(log(cells)).toEqual(Array.from({ length: N }, (_, i) => i))
  })

  it('keep their order with raw packets posted in the same turn', async () => {
    const cells = sharedCells(16)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const first = pool.run({ seq: SEQ, value: 1 }, { name: 'record' })
    pool.post(30, SEQ, 2) // onPacket appends 2
    const third = pool.run({ seq: SEQ, value: 3 }, { name: 'record' })
    await Promise.all([first, third])
    await pool.close() // the raw packet is handled before close() resolves
    expect(log(cells)).toEqual([1, 2, 3])
  })

  it('count as queued before the turn ends, and close() runs them', async () => {
    const cells = sharedCells(16)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const runs = [1, 2, 3].map((value) => pool.run({ seq: SEQ, value }, { name: 'record' }))
    expect(pool.queueSize).toBe(3)
    const closed = pool.close()
    await expect(Promise.all(runs)).resolves.toEqual([undefined, undefined, undefined])
    await closed
    expect(log(cells)).toEqual([1, 2, 3])
  })

  it('are rejected by destroy() in the same turn, and never run', async () => {
    const cells = sharedCells(16)
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { cells } })
    const runs = [1, 2, 3].map((value) => pool.run({ seq: SEQ, value }, { name: 'record' }).catch((e: unknown) => e))
    await pool.destroy()
    for (const outcome of await Promise.all(runs)) expect(outcome).toMatchObject({ name: 'PoolClosedError' })
    expect(log(cells)).toEqual([])
  })
})
