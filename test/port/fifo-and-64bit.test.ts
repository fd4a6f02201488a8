// Packets leave in the order they arrived (across producers: each producer's order is kept),
// and keys/overlapped values keep every bit: bigints come back as the same bigints (2^64-1 and
// 2^53+1 included, which a double cannot hold), numbers come back as numbers.
import { afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, type Packet } from '@iocp/core'
import { open, sharedCells, startFixture, waitAtLeast, type FixtureWorker } from '../fixtures/harness.js'

const ports: CompletionPort[] = []
const workers: FixtureWorker[] = []
function makePort(options?: ConstructorParameters<typeof CompletionPort>[0]): CompletionPort {
  const port = new CompletionPort(options)
  ports.push(port)
  return port
}
afterEach(async () => {
  for (const port of ports.splice(0)) port.close()
  await Promise.all(workers.splice(0).map((w) => w.exited))
})

const MAX_U64 = 2n ** 64n - 1n
const BIG = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n, MAX_U64 - 1n, MAX_U64]
const SMALL = [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER]

describe('FIFO', () => {
  it('get returns packets in the order they were posted', () => {
    const port = makePort({ concurrency: 1 })
    for (let i = 0; i < 1000; i++) port.post(i, i % 7, 1000 - i)
    for (let i = 0; i < 1000; i++) {
      expect(port.get(0)).toEqual({ key: i, bytes: i % 7, overlapped: 1000 - i, data: undefined })
    }
    expect(port.get(0)).toBeNull()
  })

  it('getMany returns every queued packet up to max, in order, and grows past its first scratch', () => {
    const port = makePort({ concurrency: 1 })
    for (let i = 0; i < 700; i++) port.post(i)
    const first = port.getMany(500, 0)
    expect(first.map((p) => p.key)).toEqual(Array.from({ length: 500 }, (_, i) => i))
    const rest = port.getMany(500, 0)
    expect(rest.map((p) => p.key)).toEqual(Array.from({ length: 200 }, (_, i) => 500 + i))
    expect(port.getMany(500, 0)).toEqual([])
  })

  it('getManyInto fills a batch in order and reuses it', () => {
    const port = makePort({ concurrency: 1 })
    const batch = new PacketBatch(8)
    for (let i = 0; i < 20; i++) port.post(i, i + 1, i + 2)
    const seen: number[] = []
    for (let n; (n = port.getManyInto(batch, 0)) > 0; ) {
      expect(batch.length).toBe(n)
      expect(n).toBeLessThanOrEqual(8)
      for (let i = 0; i < n; i++) {
        const key = batch.key(i) as number
        expect(batch.bytes(i)).toBe(key + 1)
        expect(batch.overlapped(i)).toBe(key + 2)
        seen.push(key)
      }
    }
    expect(batch.length).toBe(0)
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it("keeps each producer's order across four producer threads", async () => {
    const port = makePort({ concurrency: 1 })
    const producers = 4
    const count = 2000
    // cells[0]: start gate; cells[1]: producers done; cells[2]: producers ready. The gate opens
    // once every producer waits on it, so that their posts interleave.
    const cells = sharedCells(3)
    for (let producer = 0; producer < producers; producer++) {
      workers.push(startFixture('producer.mjs', { handle: port.handle, producer, count, cells }))
    }
    waitAtLeast(cells, 2, producers)
    open(cells, 0)
    waitAtLeast(cells, 1, producers)
    const packets = port.getMany(producers * count, 0)
    expect(packets).toHaveLength(producers * count)
    const next = new Array<number>(producers).fill(0)
    for (const { key, bytes } of packets) {
      const producer = (key as number) >> 16
      const seq = (key as number) & 0xffff
      expect(seq).toBe(next[producer])
      expect(bytes).toBe(seq)
      next[producer] = seq + 1
    }
    expect(next).toEqual(new Array(producers).fill(count))
  })
})

describe('64-bit values', () => {
  function roundTrip(port: CompletionPort, post: () => void, take: () => Packet | null): Packet {
    post()
    const packet = take()
    expect(packet).not.toBeNull()
    return packet!
  }

  it.each(BIG)('bigint %s comes back as the same bigint (key and overlapped)', (value) => {
    const port = makePort({ concurrency: 1 })
    const viaGet = roundTrip(port, () => port.post(value, 3, value), () => port.get(0))
    expect(viaGet).toEqual({ key: value, bytes: 3, overlapped: value, data: undefined })
    expect(typeof viaGet.key).toBe('bigint')

    port.post(value, 0, MAX_U64 - value)
    const [viaMany] = port.getMany(1, 0)
    expect(viaMany?.key).toBe(value)
    expect(viaMany?.overlapped).toBe(MAX_U64 - value)

    port.post(value, 0, value, new Uint8Array([1]))
    const viaEx = port.get(0)
    expect(viaEx?.key).toBe(value)
    expect(viaEx?.overlapped).toBe(value)

    const batch = new PacketBatch(2)
    port.post(value, 0, 5)
    port.post(7, 0, value)
    expect(port.getManyInto(batch, 0)).toBe(2)
    expect(batch.key(0)).toBe(value)
    expect(batch.keyBigInt(0)).toBe(value)
    expect(batch.overlapped(0)).toBe(5)
    expect(batch.key(1)).toBe(7)
    expect(batch.overlapped(1)).toBe(value)
    expect(batch.overlappedBigInt(1)).toBe(value)
    expect(batch.packet(0)).toEqual({ key: value, bytes: 0, overlapped: 5, data: undefined })
  })

  it('2^64-1 and 2^53+1 keep all their bits through close() and getAsync()', async () => {
    const port = makePort({ concurrency: 1 })
    port.post(MAX_U64, 1, 2n ** 53n + 1n)
    expect(await port.getAsync()).toEqual({ key: MAX_U64, bytes: 1, overlapped: 2n ** 53n + 1n, data: undefined })
    port.post(2n ** 53n + 1n, 2, MAX_U64)
    expect(port.close()).toEqual([{ key: 2n ** 53n + 1n, bytes: 2, overlapped: MAX_U64, data: undefined }])
  })

  it.each(SMALL)('number %s comes back as the same number', (value) => {
    const port = makePort({ concurrency: 1 })
    port.post(value, 0, value)
    const packet = port.get(0)
    expect(packet).toEqual({ key: value, bytes: 0, overlapped: value, data: undefined })
    expect(typeof packet?.key).toBe('number')
    expect(typeof packet?.overlapped).toBe('number')
    const batch = new PacketBatch(1)
    port.post(value, 0, value)
    port.getManyInto(batch, 0)
    expect(batch.key(0)).toBe(value)
    expect(batch.keyBigInt(0)).toBe(BigInt(value))
    expect(batch.overlappedBigInt(0)).toBe(BigInt(value))
  })

  it('keeps the type per value: number key with bigint overlapped, and the reverse', () => {
    const port = makePort({ concurrency: 1 })
    port.post(5, 0, 6n)
    port.post(7n, 0, 8)
    const [a, b] = port.getMany(2, 0)
    expect(a).toEqual({ key: 5, bytes: 0, overlapped: 6n, data: undefined })
    expect(b).toEqual({ key: 7n, bytes: 0, overlapped: 8, data: undefined })
  })

  it('bytes keeps all 32 bits', () => {
    const port = makePort({ concurrency: 1 })
    port.post(1, 2 ** 32 - 1)
    port.post(1n, 2 ** 31)
    expect(port.getMany(2, 0).map((p) => p.bytes)).toEqual([2 ** 32 - 1, 2 ** 31])
  })

  it('a bigint posted in one thread reaches another thread intact', async () => {
    const port = makePort({ concurrency: 1 })
    const consumer = startFixture('consumer.mjs', { handle: port.handle, limit: BIG.length })
    workers.push(consumer)
    for (const value of BIG) port.post(value, 0, MAX_U64 - value)
    await consumer.message('done')
    const received = consumer.messages.filter((m) => m.type === 'packet').map((m) => m.packet as Packet)
    expect(received).toEqual(BIG.map((value) => ({ key: value, bytes: 0, overlapped: MAX_U64 - value, data: undefined })))
  })
})
