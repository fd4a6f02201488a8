// RemotePool + PoolForwarder against a real redis-server: results and errors come back to the
// caller's promise, retries are bounded and end on the dead-letter stream, idempotency keys,
// cancellation, back-pressure, bad input, an unreachable Redis, close and destroy.
import { describe, expect, it } from 'vitest'
import { AbortError, PortPool, QueueFullError } from '@iocp/core'
import { DeadLetterError, PoolForwarder, RedisUnavailableError, RemoteClosedError, RemotePool, RemoteTaskError } from '@iocp/redis'
import { Redis } from 'ioredis'
import { startConsumer, uniqueName, useInProcessPool, useRedisServer } from './harness.js'

const redis = useRedisServer()
const task = new URL('../fixtures/redis-task.mjs', import.meta.url)

describe('RemotePool with an in-process forwarder', () => {
  const name = uniqueName()
  let pool: PortPool
  let forwarder: PoolForwarder
  let client: RemotePool
  let admin: Redis

  useInProcessPool(redis, task, { name, threads: 2, claimIdleMs: 5000 }, (made) => {
    ;({ pool, forwarder, client, admin } = made)
  })

  it('resolves each run() with its own task result', async () => {
    const results = await Promise.all(Array.from({ length: 500 }, (_, n) => client.run({ n })))
    expect(results.map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: 500 }, (_, n) => 2 * n))
    expect(client.stats()).toMatchObject({ pending: 0, duplicateReplies: 0 })
  })

  it('carries values v8 can serialize both ways', async () => {
    const value = { map: new Map([[1, 'a']]), big: 2n ** 70n, date: new Date(0), bytes: new Uint8Array([1, 2]) }
    expect(await client.run(value, { name: 'echo' })).toEqual(value)
  })

  it('retries a failing task maxAttempts times, then dead-letters it with its last error', async () => {
    const before = forwarder.stats()
    const error = (await client.run({ n: 7 }, { name: 'fail' }).catch((e: unknown) => e)) as DeadLetterError
    expect(error).toBeInstanceOf(DeadLetterError)
    expect(error.code).toBe('ERR_IOCP_REDIS_DEAD_LETTER')
    expect(error.attempts).toBe(3)
    // the handler's own error, rebuilt with its class and code
    expect(error.cause).toBeInstanceOf(RangeError)
    expect((error.cause as RangeError & { code: string }).code).toBe('ERR_TEST_FAIL')
    expect((error.cause as Error).message).toBe('task 7 fails')
    const after = forwarder.stats()
    expect(after.retried - before.retried).toBe(2)
    expect(after.deadLettered - before.deadLettered).toBe(1)
    // the dead-letter stream holds the task, with its attempts
    const dead = await admin.xrange(error.stream, '-', '+')
    const fields = dead.map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])))
    expect(fields.some((f) => f['n'] === 'fail' && f['attempts'] === '3')).toBe(true)
  })

  it('honours maxAttempts per run, and wraps a thrown non-error', async () => {
    const error = (await client.run(null, { name: 'throwString', maxAttempts: 1 }).catch((e: unknown) => e)) as DeadLetterError
    expect(error).toBeInstanceOf(DeadLetterError)
    expect(error.attempts).toBe(1)
    expect(error.cause).toBeInstanceOf(RemoteTaskError)
    expect((error.cause as RemoteTaskError).value).toBe('not an error')
  })

  it('answers a second task with the same idempotency key from the stored result, without running it', async () => {
    const key = uniqueName()
    const first = await client.run('first', { name: 'echo', idempotencyKey: key })
    const hits = forwarder.stats().idempotentHits
    const second = await client.run('second', { name: 'echo', idempotencyKey: key })
    expect(first).toBe('first')
    expect(second).toBe('first')
    expect(forwarder.stats().idempotentHits).toBe(hits + 1)
  })

  it('rejects at once with AbortError when the signal aborts, and the running task sees the abort', async () => {
    const ac = new AbortController()
    const ran = client.run({ n: 1 }, { name: 'waitAbort', signal: ac.signal })
    // the task is running on the forwarder's pool once the forwarder holds it and a worker took it
    // (waitAbort prints `started` on the pool's stdout; here we wait for the pool's own counter)
    while (pool.stats().running === 0) await new Promise((r) => setImmediate(r))
    const cancelledBefore = forwarder.stats().cancelled
    ac.abort()
    await expect(ran).rejects.toBeInstanceOf(AbortError)
    // the worker saw ctx.signal abort and returned; the forwarder acknowledged it as cancelled
    while (forwarder.stats().cancelled === cancelledBefore) await new Promise((r) => setImmediate(r))
    expect(client.stats().duplicateReplies).toBe(0)
  })

  it('never runs a task cancelled while it waits in the stream', async () => {
    // A client of another pool name: no forwarder reads it until one is started below.
    const other = uniqueName()
    const waiting = await RemotePool.connect({ redis: redis.get().url, name: other })
    const ac = new AbortController()
    const ran = waiting.run({ n: 5 }, { signal: ac.signal })
    while (waiting.stats().submitted === 0) await new Promise((r) => setImmediate(r))
    ac.abort()
    await expect(ran).rejects.toBeInstanceOf(AbortError)
    const late = await PoolForwarder.start({ redis: redis.get().url, pool, name: other })
    // the forwarder finds the cancellation marker, skips the task and answers 'cancelled'
    while (late.stats().cancelled === 0) await new Promise((r) => setImmediate(r))
    expect(late.stats()).toMatchObject({ received: 1, completed: 0, cancelled: 1 })
    await late.close()
    await waiting.close()
    expect(waiting.stats().duplicateReplies).toBe(0)
  })

  it('rejects an already aborted signal without posting', async () => {
    const submitted = client.stats().submitted
    await expect(client.run(1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError)
    expect(client.stats().submitted).toBe(submitted)
  })

  it('rejects bad arguments with errors that name them', async () => {
    await expect(client.run(1, { name: '' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /options\.name/ })
    await expect(client.run(1, { maxAttempts: 0 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /options\.maxAttempts/ })
    await expect(client.run(1, { signal: {} as AbortSignal })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: /options\.signal/ })
    await expect(client.run(() => 1)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /payload/ })
    await expect(RemotePool.connect({ redis: redis.get().url, maxQueue: -1 })).rejects.toMatchObject({ message: /options\.maxQueue/ })
    await expect(PoolForwarder.start({ redis: redis.get().url, pool: {} as PortPool })).rejects.toMatchObject({ message: /options\.pool/ })
    await expect(RemotePool.connect({ redis: 42 as unknown as string })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: /options\.redis/ })
  })
})

describe('RemotePool on its own', () => {
  it('refuses tasks past maxQueue with QueueFullError, counted across the stream', async () => {
    const client = await RemotePool.connect({ redis: redis.get().url, name: uniqueName(), maxQueue: 3 })
    const runs = Array.from({ length: 5 }, (_, n) => client.run({ n }).then(() => 'ran', (e: unknown) => e))
    // no forwarder: three wait in the stream; the last two are refused
    const refused = await Promise.all(runs.slice(3))
    for (const e of refused) {
      expect(e).toBeInstanceOf(QueueFullError)
      expect((e as QueueFullError).maxQueue).toBe(3)
    }
    expect(client.stats()).toMatchObject({ submitted: 3, pending: 3 })
    await client.destroy()
    for (const e of await Promise.all(runs.slice(0, 3))) expect(e).toBeInstanceOf(RemoteClosedError)
    await expect(client.run(1)).rejects.toBeInstanceOf(RemoteClosedError)
  })

  it('close() waits for pending runs, which a forwarder started later completes', async () => {
    const name = uniqueName()
    const client = await RemotePool.connect({ redis: redis.get().url, name })
    const runs = Array.from({ length: 20 }, (_, n) => client.run({ n }))
    const closed = client.close()
    await expect(client.run({ n: 0 })).rejects.toBeInstanceOf(RemoteClosedError)
    const consumer = await startConsumer({ REDIS_URL: redis.get().url, POOL_NAME: name })
    expect((await Promise.all(runs)).map((r) => (r as { n: number }).n)).toEqual(Array.from({ length: 20 }, (_, n) => 2 * n))
    await closed
    const stats = await consumer.stop()
    expect(stats['completed']).toBe(20)
    // a forwarder that ends holding nothing leaves the group
    const admin = new Redis(redis.get().url)
    expect(await admin.xinfo('CONSUMERS', `iocp:{${name}}:tasks`, 'forwarders')).toEqual([])
    admin.disconnect()
  })

  it('rejects connect() with RedisUnavailableError naming the address when Redis cannot be reached', async () => {
    const gone = await import('@iocp/redis/server').then((m) => m.startRedisServer())
    const url = gone.url
    await gone.stop()
    const error = (await RemotePool.connect({ redis: url, connectTimeoutMs: 2000 }).catch((e: unknown) => e)) as RedisUnavailableError
    expect(error).toBeInstanceOf(RedisUnavailableError)
    expect(error.code).toBe('ERR_IOCP_REDIS_UNAVAILABLE')
    expect(error.message).toContain(`127.0.0.1:${new URL(url).port}`)
    expect(error.message).toContain('ECONNREFUSED')
    const pool = new PortPool({ filename: task, threads: 1, concurrency: 1 })
    await expect(PoolForwarder.start({ redis: url, pool, connectTimeoutMs: 2000 })).rejects.toBeInstanceOf(RedisUnavailableError)
    await pool.close()
  })
})
