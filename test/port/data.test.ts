// Payloads: `data` is copied once, at post, and handed to exactly one consumer. The consumer
// sees the bytes as they were when posted, as a Uint8Array it owns; packets without a payload
// carry `data: undefined`; close() gives queued payloads back instead of dropping them.
import { afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, type Packet } from '@iocp/core'
import { startFixture, type FixtureWorker } from '../fixtures/harness.js'

const ports: CompletionPort[] = []
const workers: FixtureWorker[] = []
function makePort(): CompletionPort {
  const port = new CompletionPort({ concurrency: 1 })
  ports.push(port)
  return port
}
afterEach(async () => {
  for (const port of ports.splice(0)) port.close()
  await Promise.all(workers.splice(0).map((w) => w.exited))
})

function bytesOf(data: Uint8Array | undefined): number[] | undefined {
  return data === undefined ? undefined : Array.from(data)
}

describe('data', () => {
  it('is copied at post: changing the source afterwards does not change what the consumer sees', () => {
    const port = makePort()
    const source = new Uint8Array([1, 2, 3, 4])
    port.post(1, 4, 0, source)
    source.fill(9)
    const packet = port.get(0)
    expect(packet?.data).toBeInstanceOf(Uint8Array)
    expect(bytesOf(packet?.data)).toEqual([1, 2, 3, 4])
    // And the other way round: the consumer's copy is not the source.
    packet!.data![0] = 42
    expect(source[0]).toBe(9)
  })

  it('copies only the view given (a subarray of a larger buffer)', () => {
    const port = makePort()
    const whole = Uint8Array.from({ length: 32 }, (_, i) => i)
    port.post(1, 0, 0, whole.subarray(8, 12))
    const data = port.get(0)?.data
    expect(bytesOf(data)).toEqual([8, 9, 10, 11])
    expect(data?.byteLength).toBe(4)
  })

  it('accepts a Buffer and a Uint8Array on a SharedArrayBuffer, and returns Uint8Arrays', () => {
    const port = makePort()
    port.post(1, 0, 0, Buffer.from('héllo'))
    const shared = new Uint8Array(new SharedArrayBuffer(3))
    shared.set([7, 8, 9])
    port.post(2, 0, 0, shared)
    shared.fill(0)
    const [a, b] = port.getMany(2, 0)
    expect(a?.data).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(a!.data!).toString()).toBe('héllo')
    expect(bytesOf(b?.data)).toEqual([7, 8, 9])
  })

  it('an empty payload arrives as an empty Uint8Array, not as undefined', () => {
    const port = makePort()
    port.post(1, 0, 0, new Uint8Array(0))
    const data = port.get(0)?.data
    expect(data).toBeInstanceOf(Uint8Array)
    expect(data?.byteLength).toBe(0)
  })

  it('a large payload arrives whole', () => {
    const port = makePort()
    const source = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 31) & 0xff)
    port.post(1, source.byteLength, 0, source)
    const data = port.get(0)?.data
    expect(data?.byteLength).toBe(1 << 20)
    expect(Buffer.compare(Buffer.from(data!), Buffer.from(source))).toBe(0)
  })

  it('packets without a payload have the same shape, with data: undefined', () => {
    const port = makePort()
    port.post(1)
    port.post(2n, 0, 0)
    for (const packet of port.getMany(2, 0)) {
      expect(Object.keys(packet)).toEqual(['key', 'bytes', 'overlapped', 'data'])
      expect(packet.data).toBeUndefined()
    }
  })

  it('getMany and getManyInto hand each payload to its own packet, mixed with packets without one', () => {
    const port = makePort()
    const post = () => {
      for (let i = 0; i < 6; i++) port.post(i, 0, 0, i % 2 === 0 ? new Uint8Array([i, i]) : undefined)
    }
    post()
    expect(port.getMany(6, 0).map((p) => bytesOf(p.data))).toEqual([[0, 0], undefined, [2, 2], undefined, [4, 4], undefined])

    post()
    const batch = new PacketBatch(6)
    expect(port.getManyInto(batch, 0)).toBe(6)
    const seen = Array.from({ length: 6 }, (_, i) => bytesOf(batch.data(i)))
    expect(seen).toEqual([[0, 0], undefined, [2, 2], undefined, [4, 4], undefined])
    expect(batch.packet(2).data).toBe(batch.data(2))

    // A later fill forgets the old payloads, but arrays already taken stay valid.
    const kept = batch.data(0)
    port.post(10)
    expect(port.getManyInto(batch, 0)).toBe(1)
    expect(batch.data(0)).toBeUndefined()
    expect(bytesOf(kept)).toEqual([0, 0])
  })

  it('getAsync delivers the payload', async () => {
    const port = makePort()
    const pending = port.getAsync()
    port.post(1, 3, 0, new Uint8Array([5, 6, 7]))
    const packet = await pending
    expect(packet?.data).toBeInstanceOf(Uint8Array)
    expect(bytesOf(packet?.data)).toEqual([5, 6, 7])
  })

  it('close() returns the queued payloads, in order', () => {
    const port = makePort()
    port.post(1, 0, 0, new Uint8Array([1]))
    port.post(2)
    port.post(3n, 0, 4n, Buffer.from([3, 3, 3]))
    const left = port.close()
    expect(left.map((p) => p.key)).toEqual([1, 2, 3n])
    expect(left.map((p) => bytesOf(p.data))).toEqual([[1], undefined, [3, 3, 3]])
    expect(left[0]?.data).toBeInstanceOf(Uint8Array)
  })

  it('reaches a consumer in another thread, copied at post', async () => {
    const port = makePort()
    const consumer = startFixture('consumer.mjs', { handle: port.handle, limit: 2 })
    workers.push(consumer)
    const source = new Uint8Array([10, 20, 30])
    port.post(1, 3, 0, source)
    source.fill(0)
    port.post(2, 3, 0, source)
    await consumer.message('done')
    const received = consumer.messages.filter((m) => m.type === 'packet').map((m) => m.packet as Packet)
    expect(received.map((p) => bytesOf(p.data))).toEqual([
      [10, 20, 30],
      [0, 0, 0],
    ])
  })
})
