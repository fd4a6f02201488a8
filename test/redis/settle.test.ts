// What travels between a RemotePool and its forwarders, and how an outcome is settled, against a
// real redis-server: values of every kind come back as they went (numbers and strings take a
// shorter encoding than v8's), batches bigger than one call may carry are cut by size, a stream
// entry that is no task is moved to the dead-letter stream instead of being lost, and an outcome
// whose task another consumer took over meanwhile is dropped while the rest of the batch settles.
import { describe, expect, it } from 'vitest'
import { PortPool } from '@iocp/core'
import { PoolForwarder, RemoteClosedError, RemotePool } from '@iocp/redis'
import { Redis } from 'ioredis'
import { uniqueName, useInProcessPool, useRedisServer } from './harness.js'

const redis = useRedisServer()
const task = new URL('../fixtures/redis-task.mjs', import.meta.url)

describe('values and foreign entries', () => {
  const name = uniqueName()
  let pool: PortPool
  let forwarder: PoolForwarder
  let client: RemotePool
  let admin: Redis

  useInProcessPool(redis, task, { name, threads: 1, claimIdleMs: 60_000 }, (made) => {
    ;({ pool, forwarder, client, admin } = made)
  })

  it('brings numbers, strings and everything else back as they went', async () => {
    const values: unknown[] = [0, -0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300, -7.5, '', 'a', 'héllo ✓ 🚀', '\u00ff\u0001', undefined, null, true, [1, 'x'], { a: 1 }, new Uint8Array([255, 1])]
    const back = await Promise.all(values.map((v) => client.run(v, { name: 'echo' })))
    back.forEach((v, i) => expect(Object.is(v, values[i]) || JSON.stringify(v) === JSON.stringify(values[i])).toBe(true))
    expect(back[1]).toBe(-0)
    expect(back[2]).toBeNaN()
    expect(back[17]).toEqual(new Uint8Array([255, 1]))
  })

  it('carries batches past the size of one call: 40 payloads of 1 MiB out and back', async () => {
    // 40 MiB posted in one turn and answered in a few: more than one post call and one settle
    // call carry (16 MiB each), so both batches are cut by size, and every task comes back whole.
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1024 * 1024, i))
    const back = await Promise.all(payloads.map((p) => client.run(p, { name: 'echo' })))
    back.forEach((b, i) => {
      expect(b).toBeInstanceOf(Uint8Array)
      expect(Buffer.compare(Buffer.from(b as Uint8Array), payloads[i]!)).toBe(0)
    })
  })

  it('moves a stream entry that is no task to the dead-letter stream, as it was, and reports it', async () => {
    const errors: unknown[] = []
    const reported = new Promise<void>((resolve) =>
      forwarder.on('error', (e: unknown) => {
        errors.push(e)
        resolve()
      }),
    )
    const id = await admin.xadd(`iocp:{${name}}:tasks`, '*', 'foo', 'bar')
    await reported
    expect(errors[0]).toBeInstanceOf(TypeError)
    expect(String((errors[0] as Error).message)).toContain(id!)
    // The next task is served as usual, and by then the foreign entry is settled.
    expect(await client.run('after', { name: 'echo' })).toBe('after')
    await forwarder.close()
    expect(forwarder.stats().malformed).toBe(1)
    const dead = await admin.xrange(`iocp:{${name}}:dead`, '-', '+')
    const fields = dead.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])))
    expect(fields).toContainEqual(expect.objectContaining({ foo: 'bar', id }))
    const pending = (await admin.xpending(`iocp:{${name}}:tasks`, 'forwarders')) as [number, ...unknown[]]
    expect(pending[0]).toBe(0)
  })
})

describe('settling a batch', () => {
  it('drops the outcome of a task another consumer took over, and settles the rest', async () => {
    const name = uniqueName()
    const stream = `iocp:{${name}}:tasks`
    const group = 'forwarders'
    const pool = new PortPool({ filename: task, threads: 2, concurrency: 2 })
    const forwarder = await PoolForwarder.start({ redis: redis.get().url, pool, name, claimIdleMs: 60_000 })
    const client = await RemotePool.connect({ redis: redis.get().url, name })
    const admin = new Redis(redis.get().url)
    const channel = new BroadcastChannel('iocp-test-gate')
    let first: Promise<unknown> | undefined
    try {
      // 1. Two tasks start on the forwarder's two threads and wait at their gates.
      const started = new Set<string>()
      const bothStarted = new Promise<void>((resolve) => {
        channel.onmessage = (event: MessageEvent) => {
          started.add(String(event.data))
          if (started.has('started 1') && started.has('started 2')) resolve()
        }
      })
      first = client.run({ n: 1 }, { name: 'gate' })
      first.catch(() => {})
      const second = client.run({ n: 2 }, { name: 'gate' })
      await bothStarted
      // 2. Another consumer takes the first task over (as XAUTOCLAIM does for a consumer that
      //    stopped renewing). Posted in order, the first task has the lower id.
      const rows = (await admin.xpending(stream, group, '-', '+', 10)) as Array<[string, string, number, number]>
      expect(rows).toHaveLength(2)
      const [firstId, secondId] = rows.map((r) => r[0])
      await admin.xclaim(stream, group, 'thief', 0, firstId!, 'JUSTID')
      // 3. Both tasks finish. The second settles and answers; the first one's outcome is dropped.
      channel.postMessage('go 1')
      channel.postMessage('go 2')
      expect(await second).toBe(2)
      await forwarder.close()
      expect(forwarder.stats()).toMatchObject({ completed: 2, superseded: 1, held: 0 })
      // 4. The first task is still pending, for the consumer that took it, and unanswered.
      const after = (await admin.xpending(stream, group, '-', '+', 10)) as Array<[string, string, number, number]>
      expect(after.map((r) => [r[0], r[1]])).toEqual([[firstId, 'thief']])
      expect(after.some((r) => r[0] === secondId)).toBe(false)
      expect(client.stats()).toMatchObject({ pending: 1, duplicateReplies: 0 })
      const gone = expect(first).rejects.toBeInstanceOf(RemoteClosedError)
      await client.destroy()
      await gone
    } finally {
      channel.close()
      await client.destroy()
      await forwarder.close()
      await pool.close()
      admin.disconnect()
    }
  })
})
