// postMany: the batch form of post. Same rules per packet (FIFO, handed to a waiter when one
// may run, capacity), one lock for the lot, nothing lost on partial posts or forwarding.
import { describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, PortClosedError } from '@iocp/core'
import { startFixture, until } from '../fixtures/harness.js'

describe('PacketBatch.push and CompletionPort.postMany', () => {
  it('posts every packet in order, keeping number/bigint types and payloads', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const batch = new PacketBatch(1000)
    for (let i = 0; i < 998; i++) batch.push(i, i % 7, i * 2)
    batch.push(2n ** 64n - 1n, 4, 2n ** 53n + 1n)
    batch.push(Number.MAX_SAFE_INTEGER, 2 ** 32 - 1, 0, new Uint8Array([1, 2, 3]))
    expect(port.postMany(batch)).toBe(1000)
    expect(port.stats().posted).toBe(1000)
    const got = port.getMany(1000, 0)
    expect(got).toHaveLength(1000)
    for (let i = 0; i < 998; i++) expect(got[i]).toEqual({ key: i, bytes: i % 7, overlapped: i * 2, data: undefined })
    expect(got[998]).toEqual({ key: 2n ** 64n - 1n, bytes: 4, overlapped: 2n ** 53n + 1n, data: undefined })
    expect(got[999]!.key).toBe(Number.MAX_SAFE_INTEGER)
    expect(got[999]!.bytes).toBe(2 ** 32 - 1)
    expect(Array.from(got[999]!.data!)).toEqual([1, 2, 3])
    port.close()
  })

  it('copies payloads at postMany: changing the source afterwards changes nothing', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const batch = new PacketBatch(2)
    const source = new Uint8Array([9, 9])
    batch.push(1, 0, 0, source)
    port.postMany(batch)
    source[0] = 0
    expect(Array.from(port.get(0)!.data!)).toEqual([9, 9])
    port.close()
  })

  it('on a port with a capacity, posts what fits and says how many', () => {
    const port = new CompletionPort({ concurrency: 1, capacity: 10 })
    const batch = new PacketBatch(15)
    for (let i = 0; i < 15; i++) batch.push(i, 0, 0, new Uint8Array([i]))
    expect(port.postMany(batch)).toBe(10)
    expect(port.stats()).toMatchObject({ posted: 10, queued: 10 })
    expect(port.getMany(15, 0).map((p) => p.key)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    port.close()
  })

  it('hands the first packet to a waiting worker, like post', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const worker = startFixture('blocked-get.mjs', { handle: port.handle })
    await until(() => port.stats().waiting === 1)
    const batch = new PacketBatch(3)
    batch.push(1)
    batch.push(2)
    batch.push(3)
    expect(port.postMany(batch)).toBe(3)
    expect((await worker.message('got')).key).toBe(1)
    await worker.exited
    expect(port.getMany(3, 0).map((p) => p.key)).toEqual([2, 3])
    port.close()
  })

  it('forwards a filled batch to another port with its payloads', () => {
    const from = new CompletionPort({ concurrency: 1 })
    const to = new CompletionPort({ concurrency: 1 })
    from.post(1, 10, 100, new Uint8Array([1]))
    from.post(2n, 20, 200n)
    const batch = new PacketBatch(4)
    expect(from.getManyInto(batch, 0)).toBe(2)
    expect(to.postMany(batch)).toBe(2)
    const got = to.getMany(4, 0)
    expect(got[0]).toEqual({ key: 1, bytes: 10, overlapped: 100, data: new Uint8Array([1]) })
    expect(got[1]).toEqual({ key: 2n, bytes: 20, overlapped: 200n, data: undefined })
    from.close()
    to.close()
  })

  it('clear() empties the batch for reuse', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const batch = new PacketBatch(2)
    batch.push(1, 0, 0, new Uint8Array([1]))
    batch.clear()
    expect(batch.length).toBe(0)
    batch.push(2)
    expect(port.postMany(batch)).toBe(1)
    expect(port.get(0)).toEqual({ key: 2, bytes: 0, overlapped: 0, data: undefined })
    port.close()
  })

  it('clear() drops the payloads a fill brought, and a reused batch carries none of them', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const batch = new PacketBatch(4)
    port.post(1, 0, 0, new Uint8Array([7]))
    port.post(2)
    expect(port.getManyInto(batch, 0)).toBe(2)
    expect(batch.data(0)).toEqual(new Uint8Array([7]))
    batch.clear()
    batch.push(3)
    batch.push(4)
    expect(batch.data(0)).toBeUndefined()
    expect(batch.data(1)).toBeUndefined()
    expect(port.postMany(batch)).toBe(2)
    expect(port.getMany(4, 0)).toEqual([
      { key: 3, bytes: 0, overlapped: 0, data: undefined },
      { key: 4, bytes: 0, overlapped: 0, data: undefined },
    ])
    port.close()
  })

  it('rejects bad arguments naming them, and posts nothing', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const batch = new PacketBatch(1)
    expect(() => batch.push(-1)).toThrow(/key/)
    expect(() => batch.push(1.5)).toThrow(RangeError)
    expect(() => batch.push(1, 2 ** 32)).toThrow(/bytes/)
    expect(() => batch.push(1, 0, 2n ** 64n)).toThrow(/overlapped/)
    expect(() => batch.push(1, 0, 0, [1] as unknown as Uint8Array)).toThrow(/data/)
    expect(batch.length).toBe(0)
    batch.push(1)
    expect(() => batch.push(2)).toThrow(RangeError)
    expect(() => port.postMany({} as PacketBatch)).toThrow(TypeError)
    expect(port.stats().posted).toBe(0)
    port.close()
    expect(() => port.postMany(batch)).toThrow(PortClosedError)
  })

  it('throws PortClosedError on a port that is shut down, posting nothing', () => {
    const port = new CompletionPort({ concurrency: 1 })
    port.shutdown()
    const batch = new PacketBatch(1)
    batch.push(1)
    expect(() => port.postMany(batch)).toThrow(PortClosedError)
    port.close()
  })
})
