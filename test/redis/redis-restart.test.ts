// Redis stopped for a few seconds and restarted from its append-only file (appendfsync always):
// nothing acknowledged is lost or run again, tasks submitted while Redis is away are delivered
// once it is back, and the client and the consumer process both reconnect on their own.
import { afterAll, expect, it } from 'vitest'
import { RemotePool } from '@iocp/redis'
import { Redis } from 'ioredis'
import { startConsumer, uniqueName, useRedisServer, type Consumer } from './harness.js'

const redis = useRedisServer({ appendOnly: true, appendFsync: 'always' })
let consumer: Consumer | undefined
afterAll(async () => {
  if (consumer && consumer.child.exitCode === null && consumer.child.signalCode === null) consumer.child.kill('SIGKILL')
  await consumer?.exited
})

it('keeps every acknowledged task across a Redis restart, and both sides reconnect', async () => {
  const server = redis.get()
  const name = uniqueName()
  consumer = await startConsumer({ REDIS_URL: server.url, POOL_NAME: name, CLAIM_IDLE_MS: '2000' })
  const client = await RemotePool.connect({ redis: server.url, name })
  const settles = new Map<number, number>()
  const run = (n: number): Promise<unknown> =>
    client.run({ n }).then((v) => {
      settles.set(n, (settles.get(n) ?? 0) + 1)
      return v
    })

  // 1. 300 tasks completed and acknowledged before the outage.
  const before = await Promise.all(Array.from({ length: 300 }, (_, n) => run(n)))
  expect(before.map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: 300 }, (_, n) => 2 * n))

  // 2. Redis goes away (SIGTERM: it writes out its AOF and exits) ...
  await server.halt()
  // ... and 300 more tasks are submitted while it is away: they wait in the client.
  const during = Array.from({ length: 300 }, (_, i) => run(300 + i))
  // The outage lasts a few seconds (the fault being tested, not a synchronisation).
  await new Promise((r) => setTimeout(r, 3000))
  await server.resume()

  // 3. Without any help, the client posts what waited and the consumer runs it.
  const after = await Promise.all(during)
  expect(after.map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: 300 }, (_, i) => 2 * (300 + i)))
  // 4. 300 more after the restart, to see both sides fully back.
  await Promise.all(Array.from({ length: 300 }, (_, i) => run(600 + i)))

  expect([...settles.values()].every((c) => c === 1)).toBe(true)
  expect(settles.size).toBe(900)
  expect(client.stats()).toMatchObject({ submitted: 900, settled: 900, pending: 0, duplicateReplies: 0 })
  // Nothing acknowledged before the restart ran again: the consumer ran each task exactly once.
  const stats = await consumer.stop()
  expect(stats['completed']).toBe(900)
  expect(stats['reclaimed']).toBe(0)
  // and the group survived in the AOF with nothing left pending
  const admin = new Redis(server.url)
  const [group] = (await admin.xinfo('GROUPS', `iocp:{${name}}:tasks`)) as unknown[][]
  const info = Object.fromEntries(Array.from({ length: group!.length / 2 }, (_, i) => [group![2 * i], group![2 * i + 1]]))
  expect(info['pending']).toBe(0)
  expect(info['lag']).toBe(0)
  admin.disconnect()
  await client.close()
})
