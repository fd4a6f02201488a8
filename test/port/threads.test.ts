// The port across threads: every packet from several producer workers reaches exactly one of
// several consumer workers, in per-producer order, never with more than `concurrency` of them
// running; waiting threads are released LIFO.
import { describe, expect, it } from 'vitest'
import { CompletionPort } from '@iocp/core'
import { open, sharedCells, startFixture, until } from '../fixtures/harness.js'

describe('cross-thread delivery', () => {
  it('delivers 120 000 packets from 3 producers to 3 consumers, each exactly once, FIFO per producer', async () => {
    const producers = 3
    const perProducer = 40_000
    const concurrency = 2
    const port = new CompletionPort({ concurrency })
    const cells = sharedCells(4)
    const seen = sharedCells(producers * perProducer)
    const consumers = (['get', 'getMany', 'getManyInto'] as const).map((mode) =>
      startFixture('stress-consumer.mjs', { handle: port.handle, mode, perProducer, cells, seen }),
    )
    const posters = Array.from({ length: producers }, (_, producer) =>
      startFixture('stress-producer.mjs', { handle: port.handle, producer, perProducer }),
    )
    await Promise.all(posters.map((p) => p.exited))
    port.shutdown() // consumers drain what is left, then see PortClosedError
    const done = await Promise.all(consumers.map((c) => c.message('done')))
    await Promise.all(consumers.map((c) => c.exited))

    expect(done.every((d) => d.closed === true)).toBe(true)
    expect(Atomics.load(cells, 2)).toBe(producers * perProducer)
    expect(Atomics.load(cells, 3)).toBe(0) // no per-producer order broken
    let wrong = 0
    for (let i = 0; i < seen.length; i++) if (seen[i] !== 1) wrong++
    expect(wrong).toBe(0)
    expect(Atomics.load(cells, 1)).toBeGreaterThan(0)
    expect(Atomics.load(cells, 1)).toBeLessThanOrEqual(concurrency)
    const stats = port.stats()
    expect(stats.posted).toBe(producers * perProducer)
    expect(stats.dequeued).toBe(producers * perProducer)
    expect(stats.queued).toBe(0)
    port.close()
  })
})

describe('release order and the concurrency limit', () => {
  it('releases waiting workers LIFO', async () => {
    const port = new CompletionPort({ concurrency: 4 })
    const gate = sharedCells(1) // never opened before close: a released worker does not wait again
    const waiters = []
    for (let i = 0; i < 3; i++) {
      waiters.push(startFixture('waiter.mjs', { handle: port.handle, gate }))
      await until(() => port.stats().waiting === i + 1) // the next one waits only after this one
    }
    const keys = [10, 20, 30]
    for (const [i, key] of keys.entries()) {
      port.post(key)
      await until(() => port.stats().waiting === 2 - i)
    }
    const got = await Promise.all(waiters.map((w) => w.message('got')))
    expect(got.map((m) => m.key)).toEqual([30, 20, 10]) // the newest waiter got the first packet
    port.close()
    open(gate, 0)
    await Promise.all(waiters.map((w) => w.exited))
  })

  it('releases no more workers than the concurrency allows; a returning worker takes the next packet itself', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const gate = sharedCells(1)
    const older = startFixture('waiter.mjs', { handle: port.handle, gate })
    await until(() => port.stats().waiting === 1)
    const newer = startFixture('waiter.mjs', { handle: port.handle, gate })
    await until(() => port.stats().waiting === 2)
    port.post(1)
    port.post(2)
    // The newer worker runs with packet 1 and holds at the gate; packet 2 stays queued although
    // the older worker is waiting: one may run.
    expect((await newer.message('got')).key).toBe(1)
    expect(port.stats()).toMatchObject({ running: 1, queued: 1, waiting: 1 })
    // The runner calls get() again: it stops counting and takes packet 2 itself.
    open(gate, 0)
    expect((await newer.message('got2')).key).toBe(2)
    expect(older.messages).toHaveLength(0)
    port.close()
    await Promise.all([older.exited, newer.exited])
    expect(older.messages.map((m) => m.type)).toEqual(['error'])
  })
})

describe('threads that go away', () => {
  it('a worker that exits holding packets stops counting as running, and its packets can be recovered', async () => {
    const port = new CompletionPort({ concurrency: 1, trackHeld: true })
    for (let key = 1; key <= 4; key++) port.post(key, key * 10, key * 100, new Uint8Array([key]))
    // The worker takes two packets in one getMany and ends without another get: it held them.
    const worker = startFixture('consumer.mjs', { handle: port.handle, mode: 'getMany', max: 2, limit: 2 })
    const threadId = worker.worker.threadId
    await worker.exited
    expect(port.stats()).toMatchObject({ running: 0, queued: 2 })
    // Its slot is free again: this thread may run with concurrency 1.
    expect(port.get(0)?.key).toBe(3)
    const held = port.recoverHeld(threadId)
    expect(held.map((p) => [p.key, p.bytes, p.overlapped])).toEqual([[1, 10, 100], [2, 20, 200]])
    expect(held.every((p) => p.data === undefined)).toBe(true) // the payloads went to the worker
    expect(port.recoverHeld(threadId)).toEqual([]) // handed out once
    port.close()
  })

  it('a worker that took a packet and called get() again holds nothing', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    port.post(1)
    const worker = startFixture('consumer.mjs', { handle: port.handle, mode: 'get' })
    const threadId = worker.worker.threadId
    await worker.message('packet')
    await until(() => port.stats().waiting === 1) // its next get() ended the delivery
    port.shutdown() // wakes it (drained): it ends without holding anything
    await worker.exited
    expect(port.recoverHeld(threadId)).toEqual([])
    expect(port.stats().running).toBe(0)
    port.close()
  })
})

describe('spinning before sleeping', () => {
  for (const spinMicroseconds of [0, 1_000]) {
    it(`keeps LIFO release and delivers every packet with spinMicroseconds ${spinMicroseconds}`, async () => {
      const port = new CompletionPort({ concurrency: 4, spinMicroseconds })
      const gate = sharedCells(1)
      const waiters = []
      for (let i = 0; i < 3; i++) {
        waiters.push(startFixture('waiter.mjs', { handle: port.handle, gate }))
        await until(() => port.stats().waiting === i + 1)
      }
      for (const [i, key] of [1, 2, 3].entries()) {
        port.post(key)
        await until(() => port.stats().waiting === 2 - i)
      }
      expect((await Promise.all(waiters.map((w) => w.message('got')))).map((m) => m.key)).toEqual([3, 2, 1])
      port.close()
      open(gate, 0)
      await Promise.all(waiters.map((w) => w.exited))
    })
  }
})
