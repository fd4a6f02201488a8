// RemotePort -> Redis stream -> Forwarder -> local CompletionPort -> ForwardedPort in a worker:
// packets arrive as posted (values, types, payloads, FIFO), a packet is acknowledged when the
// thread that took it comes back for the next one, the forwarder holds no more than its capacity,
// and the remote port refuses posts past its own capacity.
import { afterEach, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, PortFullError } from '@iocp/core'
import { Forwarder, RemotePort } from '@iocp/redis'
import { Redis } from 'ioredis'
import { startFixture, type FixtureWorker } from '../fixtures/harness.js'
import { uniqueName, useRedisServer } from './harness.js'

const redis = useRedisServer()
const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function setup(capacity = 256) {
  const name = uniqueName()
  // trackHeld: the port keeps what an exited thread held, for recoverHeld (an option of the
  // rewritten port; older ports keep it always and ignore the key).
  const options = { concurrency: 2, trackHeld: true }
  const port = new CompletionPort(options)
  const forwarder = await Forwarder.start({ redis: redis.get().url, port, name, capacity, claimIdleMs: 5000 })
  const remote = await RemotePort.connect({ redis: redis.get().url, name })
  const admin = new Redis(redis.get().url)
  cleanups.push(
    () => port.close(),
    () => forwarder.close(),
    () => remote.close(),
    () => admin.disconnect(),
  )
  return { name, port, forwarder, remote, admin, stream: `iocp:{${name}}:tasks` }
}

async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setImmediate(r))
}

function reader(workerData: Record<string, unknown>): FixtureWorker {
  const w = startFixture('redis-reader.mjs', workerData)
  cleanups.push(() => w.exited)
  return w
}

it('delivers packets as posted, in order, with their types and payloads', async () => {
  const { forwarder, remote } = await setup()
  const N = 600
  const posts: Array<Promise<void>> = []
  for (let i = 0; i < N; i++) {
    const big = i % 3 === 0
    posts.push(
      remote.post(
        big ? (1n << 63n) + BigInt(i) : i,
        i * 7,
        big ? 2n ** 64n - 1n - BigInt(i) : Number.MAX_SAFE_INTEGER - i,
        i % 2 === 0 ? new Uint8Array([i & 255, 1, 2]) : undefined,
      ),
    )
  }
  await Promise.all(posts)
  const w = reader({ handle: forwarder.handle, mode: 'drain', count: N })
  const { packets } = (await w.message('packets')) as unknown as { packets: Array<Record<string, unknown>> }
  expect(packets).toHaveLength(N)
  packets.forEach((p, i) => {
    const big = i % 3 === 0
    expect(p['key']).toEqual(big ? (1n << 63n) + BigInt(i) : i)
    expect(p['bytes']).toBe(i * 7)
    expect(p['overlapped']).toEqual(big ? 2n ** 64n - 1n - BigInt(i) : Number.MAX_SAFE_INTEGER - i)
    expect(p['data']).toEqual(i % 2 === 0 ? new Uint8Array([i & 255, 1, 2]) : undefined)
  })
  await w.message('done')
  await until(() => forwarder.stats().acknowledged === N)
  expect(forwarder.stats()).toMatchObject({ forwarded: N, acknowledged: N, held: 0 })
})

it('acknowledges a packet when the thread that took it comes back for the next one', async () => {
  const { forwarder, remote, admin, stream } = await setup()
  await remote.post(42, 1, 2, new Uint8Array([9]))
  const gate = new SharedArrayBuffer(4)
  const w = reader({ handle: forwarder.handle, mode: 'hold', gate })
  const { packet } = (await w.message('got')) as unknown as { packet: Record<string, unknown> }
  expect(packet).toEqual({ key: 42, bytes: 1, overlapped: 2, data: new Uint8Array([9]) })
  // The thread holds it: still pending in the group, not acknowledged.
  expect(((await admin.xpending(stream, 'forwarders')) as unknown[])[0]).toBe(1)
  expect(forwarder.stats()).toMatchObject({ acknowledged: 0, held: 1 })
  // The thread comes back (get(0)): what it held is released, and the forwarder XACKs it.
  Atomics.store(new Int32Array(gate), 0, 1)
  Atomics.notify(new Int32Array(gate), 0)
  expect((await w.message('released'))['next']).toBeNull()
  await until(() => forwarder.stats().acknowledged === 1)
  expect(((await admin.xpending(stream, 'forwarders')) as unknown[])[0]).toBe(0)
  expect(forwarder.stats().held).toBe(0)
})

it('holds no more packets than its capacity: the rest stay in the stream for other machines', async () => {
  const { port, forwarder, remote, admin, stream } = await setup(4)
  const batch = new PacketBatch(10)
  for (let i = 0; i < 10; i++) batch.push(i)
  expect(await remote.postMany(batch)).toBe(10)
  await until(() => forwarder.stats().held === 4)
  expect(port.stats().queued).toBe(4)
  const [group] = (await admin.xinfo('GROUPS', stream)) as unknown[][]
  const info = Object.fromEntries(Array.from({ length: group!.length / 2 }, (_, i) => [group![2 * i], group![2 * i + 1]]))
  expect(info['pending']).toBe(4)
  expect(info['lag']).toBe(6)
  // drain them all: the forwarder takes more as slots free up
  const w = reader({ handle: forwarder.handle, mode: 'drain', count: 10 })
  const { packets } = (await w.message('packets')) as unknown as { packets: Array<{ key: number }> }
  expect(packets.map((p) => p.key)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  await w.message('done')
})

it('refuses posts past the remote capacity with PortFullError, and bad arguments by name', async () => {
  const name = uniqueName()
  const remote = await RemotePort.connect({ redis: redis.get().url, name, capacity: 3 })
  cleanups.push(() => remote.close())
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map((k) => remote.post(k).then(() => 'posted', (e: unknown) => e)))
  expect(outcomes.slice(0, 3)).toEqual(['posted', 'posted', 'posted'])
  for (const e of outcomes.slice(3)) {
    expect(e).toBeInstanceOf(PortFullError)
    expect((e as PortFullError).capacity).toBe(3)
  }
  const batch = new PacketBatch(2)
  batch.push(6)
  expect(await remote.postMany(batch)).toBe(0)
  await expect(remote.post(-1)).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /^key/ })
  await expect(remote.post(1, 1.5)).rejects.toMatchObject({ name: 'RangeError', message: /^bytes/ })
  await expect(remote.post(1, 0, 2n ** 64n)).rejects.toMatchObject({ name: 'RangeError', message: /^overlapped/ })
  await expect(remote.post(1, 0, 0, 'x' as unknown as Uint8Array)).rejects.toMatchObject({ name: 'TypeError', message: /^data/ })
  await expect(remote.postMany({} as PacketBatch)).rejects.toMatchObject({ name: 'TypeError', message: /^batch/ })
  await expect(Forwarder.start({ redis: redis.get().url, port: {} as CompletionPort })).rejects.toMatchObject({ message: /options\.port/ })
})

it('re-posts, payload included, the packet a local thread held when it exited (recoverHeld)', async () => {
  const { forwarder, remote } = await setup()
  await remote.post(7, 3, 5n, new Uint8Array([1, 2, 3]))
  const first = reader({ handle: forwarder.handle, mode: 'exit' })
  const threadId = first.worker.threadId
  expect((await first.message('got'))['packet']).toEqual({ key: 7, bytes: 3, overlapped: 5n, data: new Uint8Array([1, 2, 3]) })
  await first.exited
  expect(forwarder.recoverHeld(threadId)).toBe(1)
  // still unacknowledged: the next thread gets it whole, and its release acknowledges it
  expect(forwarder.stats()).toMatchObject({ acknowledged: 0, held: 1 })
  const second = reader({ handle: forwarder.handle, mode: 'drain', count: 1 })
  expect(((await second.message('packets')) as unknown as { packets: unknown[] }).packets).toEqual([
    { key: 7, bytes: 3, overlapped: 5n, data: new Uint8Array([1, 2, 3]) },
  ])
  await second.message('done')
  await until(() => forwarder.stats().acknowledged === 1)
})
