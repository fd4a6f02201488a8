// Raw packets: pool.post(key, bytes, overlapped, data) (and posts from other threads through
// pool.handle) reach the task module's `onPacket(packet, ctx)`; the completion key selects what
// the handler does. The fixture handler echoes each packet to a reply port (its payload bytes
// + 1), throws for key 13, and exits its worker for key 14.
import { afterEach, describe, expect, it } from 'vitest'
import { Worker } from 'node:worker_threads'
import { CompletionPort, PoolClosedError, WorkerDiedError, type Packet } from '@iocp/core'
import { destroyPools, makePool, until } from '../fixtures/harness.js'

const replies: CompletionPort[] = []
afterEach(async () => {
  await destroyPools()
  for (const port of replies.splice(0)) port.close()
})

function replyPort(): CompletionPort {
  const port = new CompletionPort({ concurrency: 1 })
  replies.push(port)
  return port
}

async function take(port: CompletionPort, count: number): Promise<Packet[]> {
  const packets: Packet[] = []
  while (packets.length < count) {
    const packet = await port.getAsync()
    if (packet !== null) packets.push(packet)
  }
  return packets
}

describe('post(): raw packets', () => {
  it('hands each packet to onPacket, key, bytes, overlapped and data intact', async () => {
    const reply = replyPort()
    const pool = makePool({ concurrency: 2, workerData: { reply: reply.handle } })
    pool.post(1, 10, 100)
    pool.post(2n ** 60n, 20, 2n ** 63n, new Uint8Array([1, 2, 3]))
    pool.post(3, 30, 300, new Uint8Array(0))
    const packets = await take(reply, 3)
    packets.sort((a, b) => Number(a.bytes) - Number(b.bytes))
    expect(packets).toEqual([
      { key: 1, bytes: 10, overlapped: 100, data: undefined },
      { key: 2n ** 60n, bytes: 20, overlapped: 2n ** 63n, data: new Uint8Array([2, 3, 4]) },
      { key: 3, bytes: 30, overlapped: 300, data: new Uint8Array(0) },
    ])
  })

  it('lets a handler post more packets to the pool through ctx.post', async () => {
    const reply = replyPort()
    const pool = makePool({ concurrency: 1, workerData: { reply: reply.handle } })
    pool.post(20, 0, 77)
    const keys = (await take(reply, 2)).map((p) => p.key)
    expect(keys.sort()).toEqual([20, 21])
  })

  it('takes packets posted by another thread through pool.handle', async () => {
    const reply = replyPort()
    const pool = makePool({ concurrency: 2, workerData: { reply: reply.handle } })
    const source = `
      const { workerData } = require('node:worker_threads')
      import(workerData.core).then(({ CompletionPort }) => {
        const port = CompletionPort.fromHandle(workerData.handle)
        for (let i = 0; i < 50; i++) port.post(1000 + i, i)
      })`
    const core = import.meta.resolve('@iocp/core')
    const worker = new Worker(source, { eval: true, workerData: { handle: pool.handle, core } })
    await new Promise((resolve) => worker.once('exit', resolve))
    const keys = (await take(reply, 50)).map((p) => p.key as number).sort((a, b) => a - b)
    expect(keys).toEqual(Array.from({ length: 50 }, (_, i) => 1000 + i))
  })

  it("reports a handler's error as a packetError event, and keeps going", async () => {
    const reply = replyPort()
    const pool = makePool({ concurrency: 1, workerData: { reply: reply.handle } })
    const failed = new Promise<[unknown, Packet]>((resolve) => pool.once('packetError', (e, p) => resolve([e, p])))
    pool.post(13, 1, 2)
    const [error, packet] = await failed
    expect(error).toMatchObject({ message: 'unlucky', code: 'E13' })
    expect(packet).toMatchObject({ key: 13, bytes: 1, overlapped: 2 })
    pool.post(5)
    expect((await take(reply, 1))[0]!.key).toBe(5)
  })

  it('reports a packet whose worker died as a packetError with WorkerDiedError', async () => {
    const reply = replyPort()
    const pool = makePool({ concurrency: 1, threads: 1, workerData: { reply: reply.handle } })
    const failed = new Promise<[unknown, Packet]>((resolve) => pool.once('packetError', (e, p) => resolve([e, p])))
    pool.post(14, 3, 4)
    const [error, packet] = await failed
    expect(error).toBeInstanceOf(WorkerDiedError)
    expect(packet).toMatchObject({ key: 14, bytes: 3, overlapped: 4 })
    await until(() => pool.stats().threads === 1)
    expect(await pool.run(2)).toBe(4)
  })

  it("refuses the pool's reserved keys, bad arguments, and posts after close", async () => {
    const pool = makePool({ concurrency: 1 })
    expect(() => pool.post(2 ** 52)).toThrow(/key must be below 2\^52/)
    expect(() => pool.post(-1)).toThrow(RangeError)
    expect(() => pool.post(1, -1)).toThrow(/bytes/)
    await pool.close()
    expect(() => pool.post(1)).toThrow(PoolClosedError)
  })
})
