// A consumer process killed with SIGKILL in the middle of its tasks: the tasks it held (running
// or waiting in its local pool) are reclaimed by another consumer once idle for claimIdleMs and
// completed there. Every run() settles exactly once, counted here.
import { afterEach, expect, it } from 'vitest'
import { DeadLetterError, RemotePool } from '@iocp/redis'
import { startConsumer, uniqueName, useRedisServer, type Consumer } from './harness.js'

const redis = useRedisServer()
const started: Consumer[] = []
afterEach(async () => {
  for (const c of started.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL')
    await c.exited
  }
})

it('reclaims the tasks of a consumer killed mid-task; every run() settles exactly once', async () => {
  const name = uniqueName()
  const env = { REDIS_URL: redis.get().url, POOL_NAME: name, CLAIM_IDLE_MS: '1000', THREADS: '2' }
  // Consumer A holds at most 8 tasks; its tasks block forever once started (IOCP_TEST_HOLD).
  const a = await startConsumer({ ...env, CAPACITY: '8', IOCP_TEST_HOLD: '1' })
  started.push(a)
  const client = await RemotePool.connect({ redis: redis.get().url, name })
  const N = 20
  const settles = new Array<number>(N).fill(0)
  const outcomes: unknown[] = new Array(N)
  // One turn of the event loop: the 20 tasks enter the stream in one script call, so A's first
  // read takes 8 of them at once (its capacity) and the other 12 stay in the stream.
  const runs = Array.from({ length: N }, (_, n) =>
    client.run({ n }).then(
      (v) => {
        settles[n]!++
        outcomes[n] = v
      },
      (e: unknown) => {
        settles[n]!++
        outcomes[n] = e
      },
    ),
  )
  // A's two workers have each started a task (and hold 6 more in the local pool): kill it now.
  const startedLines = await a.waitLines((l) => l.startsWith('started '), 2)
  const heldByA = startedLines.map((l) => Number(l.slice(8)))
  a.child.kill('SIGKILL')
  expect(await a.exited).toBe('SIGKILL')

  // Consumer B takes the 12 never delivered, and reclaims A's 8 after they sit idle 1 s.
  const b = await startConsumer({ ...env, CAPACITY: '64' })
  started.push(b)
  await Promise.all(runs)

  expect(settles).toEqual(new Array(N).fill(1))
  for (let n = 0; n < N; n++) expect(outcomes[n]).toEqual({ n: 2 * n, pid: b.pid })
  // the two tasks A was running when it died were completed by B
  for (const n of heldByA) expect((outcomes[n] as { pid: number }).pid).toBe(b.pid)
  expect(client.stats()).toMatchObject({ submitted: N, settled: N, pending: 0, duplicateReplies: 0 })
  const stats = await b.stop()
  expect(stats['reclaimed']).toBe(8)
  expect(stats['completed']).toBe(N)
  expect(stats['held']).toBe(0)
  await client.close()
})

it('dead-letters a task that kills every consumer it is delivered to, after maxAttempts deliveries', async () => {
  const name = uniqueName()
  const env = { REDIS_URL: redis.get().url, POOL_NAME: name, CLAIM_IDLE_MS: '500', THREADS: '1' }
  const client = await RemotePool.connect({ redis: redis.get().url, name, maxAttempts: 2 })
  const outcome = client.run(null, { name: 'crash' }).catch((e: unknown) => e)
  // delivery 1 and delivery 2 (reclaimed after 500 ms idle) each take their consumer down
  for (let i = 0; i < 2; i++) {
    const c = await startConsumer(env)
    started.push(c)
    expect(await c.exited).toBe('SIGKILL')
  }
  // delivery 3 is past maxAttempts: the third consumer dead-letters it without running it
  const c = await startConsumer(env)
  started.push(c)
  const error = (await outcome) as DeadLetterError
  expect(error).toBeInstanceOf(DeadLetterError)
  expect(error.attempts).toBe(2)
  const stats = await c.stop()
  expect(stats).toMatchObject({ deadLettered: 1, completed: 0, reclaimed: 1 })
  expect(c.lines.some((l) => l === 'crashing')).toBe(false)
  await client.close()
})
