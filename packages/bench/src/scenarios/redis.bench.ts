/**
 * Scenario 6, beyond one machine: a tiny task (returns its input) through @iocp/redis, end to
 * end (RemotePool.run in this process -> a Redis stream -> PoolForwarder + PortPool in 1 or 2
 * consumer processes -> the reply stream -> the promise), with at most 2000 tasks in flight.
 * Beside it, on the same private redis-server (started here: loopback, no persistence):
 *
 * - BullMQ with the same task: `Queue.addBulk` in chunks of 256, one `Worker` of concurrency 50
 *   in this process; the figure counts the adds (as ours counts the posts).
 * - The raw streams ceilings: `XADD` pipelined 256 per round trip, and `XREADGROUP COUNT 256`
 *   + `XACK` of what was read.
 *
 * When no redis-server can be started (none installed), every row says so instead of failing.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { RemotePool } from '@iocp/redis'
import { redisServerAvailable, startRedisServer, type RedisServer } from '@iocp/redis/server'
import { Redis } from 'ioredis'
import { attempt, measured, unavailable, type Impl, type Row } from '../report.js'
import { sizedRuns, type Context, type Scenario } from '../scenario.js'

const WINDOW = 2000
const FIRST = 2000
/**
 * The fewest tasks a timed run of a PortPool row takes: a few windows, so the figure is the
 * steady flow of tasks and not the latency of one window (a run of one window measured one
 * burst: everything posted, then everything answered, with nothing overlapping). Its first,
 * sizing run doubles as the consumer processes' warm-up.
 */
const POOL_FIRST = 4 * WINDOW
/** The most tasks one timed run may use (a run is sized to budget.roundSeconds, then capped). */
const MAX = 200_000
const BATCH = 256
const consumerScript = fileURLToPath(new URL('../workers/redis-consumer.js', import.meta.url))

interface RowSpec {
  id: string
  label: string
  impl: Impl
}

const ROWS = {
  pool1: { id: 'redis.pool.1', label: '@iocp/redis PortPool, 1 consumer process', impl: 'port' },
  pool2: { id: 'redis.pool.2', label: '@iocp/redis PortPool, 2 consumer processes', impl: 'port' },
  bullmq: { id: 'redis.bullmq', label: 'BullMQ (addBulk + Worker, concurrency 50)', impl: 'bullmq' },
  xadd: { id: 'redis.xadd', label: 'Redis Streams: XADD pipelined 256 at a time (ceiling)', impl: 'redis' },
  xread: { id: 'redis.xreadgroup', label: 'Redis Streams: XREADGROUP COUNT 256 + XACK (ceiling)', impl: 'redis' },
} satisfies Record<string, RowSpec>

/** Starts a consumer process and resolves once it reads tasks. */
function startConsumer(url: string, name: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [consumerScript], {
      env: { ...process.env, REDIS_URL: url, POOL_NAME: name, THREADS: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    child.once('exit', (code) => reject(new Error(`consumer process exited (${code}) before it was ready`)))
    child.stdout!.once('data', () => resolve(child))
  })
}

function stopConsumer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.removeAllListeners('exit')
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

/** Runs `total` tasks through `client`, `WINDOW` in flight; resolves with tasks per second. */
function drive(client: RemotePool<number, number>, total: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let next = 0
    let settled = 0
    let stop = false
    const start = performance.now()
    const launch = (): void => {
      const input = next++
      client.run(input).then(
        (output) => {
          if (stop) return
          if (output !== input) {
            stop = true
            reject(new Error(`task ${input} returned ${String(output)}`))
            return
          }
          settled++
          if (next < total) launch()
          else if (settled === total) resolve(total / ((performance.now() - start) / 1000))
        },
        (error: unknown) => {
          if (!stop) reject(error)
          stop = true
        },
      )
    }
    for (let k = 0; k < Math.min(WINDOW, total); k++) launch()
  })
}

async function poolRow(spec: RowSpec, server: RedisServer, consumers: number, context: Context): Promise<Row> {
  return attempt(spec.id, spec.label, spec.impl, async () => {
    const name = `bench-${randomUUID().slice(0, 8)}`
    const children: ChildProcess[] = []
    let client: RemotePool<number, number> | undefined
    try {
      for (let i = 0; i < consumers; i++) children.push(await startConsumer(server.url, name))
      client = await RemotePool.connect<number, number>({ redis: server.url, name })
      const c = client
      const runs = await sizedRuns(context.budget, POOL_FIRST, (n) => drive(c, n), MAX)
      return measured(spec.id, spec.label, spec.impl, runs, { note: `${consumers} process(es) x 1 worker thread` })
    } finally {
      await client?.close()
      await Promise.all(children.map(stopConsumer))
    }
  })
}

async function bullmqRow(server: RedisServer, context: Context): Promise<Row> {
  const spec = ROWS.bullmq
  let bullmq: typeof import('bullmq')
  try {
    bullmq = await import('bullmq')
  } catch {
    return unavailable(spec.id, spec.label, spec.impl, 'bullmq is not installed')
  }
  return attempt(spec.id, spec.label, spec.impl, async () => {
    const connection = { host: server.host, port: server.port, maxRetriesPerRequest: null }
    const name = `bench-${randomUUID().slice(0, 8)}`
    const queue = new bullmq.Queue(name, { connection })
    let done = 0
    let target = 0
    let finished: (() => void) | undefined
    const worker = new bullmq.Worker(name, async (job) => job.data as number, { connection, concurrency: 50 })
    worker.on('completed', () => {
      if (++done === target) finished?.()
    })
    try {
      await worker.waitUntilReady()
      const once = async (n: number): Promise<number> => {
        done = 0
        target = n
        const all = new Promise<void>((r) => (finished = r))
        const start = performance.now()
        for (let i = 0; i < n; i += BATCH) {
          const jobs = Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => ({
            name: 'echo',
            data: i + k,
            opts: { removeOnComplete: true },
          }))
          await queue.addBulk(jobs)
        }
        await all
        return n / ((performance.now() - start) / 1000)
      }
      return measured(spec.id, spec.label, spec.impl, await sizedRuns(context.budget, FIRST, once, MAX / 4))
    } finally {
      await worker.close()
      await queue.obliterate({ force: true }).catch(() => {})
      await queue.close()
    }
  })
}

async function ceilingRows(server: RedisServer, context: Context): Promise<Row[]> {
  const redis = new Redis(server.url)
  const stream = `bench-ceiling-${randomUUID().slice(0, 8)}`
  try {
    const xadd = await attempt(ROWS.xadd.id, ROWS.xadd.label, ROWS.xadd.impl, async () => {
      const once = async (n: number): Promise<number> => {
        const start = performance.now()
        for (let i = 0; i < n; i += BATCH) {
          const pipe = redis.pipeline()
          for (let k = 0; k < Math.min(BATCH, n - i); k++) pipe.xadd(stream, '*', 'v', String(i + k))
          await pipe.exec()
        }
        return n / ((performance.now() - start) / 1000)
      }
      return measured(ROWS.xadd.id, ROWS.xadd.label, ROWS.xadd.impl, await sizedRuns(context.budget, FIRST, once, MAX))
    })
    const xread = await attempt(ROWS.xread.id, ROWS.xread.label, ROWS.xread.impl, async () => {
      // Reads back what the XADD row wrote (it wrote more than any read run takes).
      let group = 0
      const once = async (n: number): Promise<number> => {
        const g = `g${group++}`
        await redis.xgroup('CREATE', stream, g, '0')
        const start = performance.now()
        let read = 0
        while (read < n) {
          const res = (await redis.xreadgroup('GROUP', g, 'c', 'COUNT', Math.min(BATCH, n - read), 'STREAMS', stream, '>')) as
            | Array<[string, Array<[string, string[]]>]>
            | null
          const entries = res?.[0]?.[1] ?? []
          if (entries.length === 0) throw new Error(`the stream ran out after ${read} entries`)
          await redis.xack(stream, g, ...entries.map(([id]) => id))
          read += entries.length
        }
        return n / ((performance.now() - start) / 1000)
      }
      const len = await redis.xlen(stream)
      return measured(ROWS.xread.id, ROWS.xread.label, ROWS.xread.impl, await sizedRuns(context.budget, FIRST, once, len))
    })
    return [xadd, xread]
  } finally {
    await redis.del(stream).catch(() => {})
    redis.disconnect()
  }
}

async function run(context: Context) {
  const all = Object.values(ROWS)
  let server: RedisServer | undefined
  let reason: string | undefined
  if (!redisServerAvailable()) reason = 'no redis-server here (apt-get install -y redis-server, or set REDIS_SERVER)'
  else {
    try {
      server = await startRedisServer()
    } catch (error) {
      reason = `redis-server did not start: ${(error as Error).message}`
    }
  }
  let rows: Row[]
  if (!server) rows = all.map((s) => unavailable(s.id, s.label, s.impl, reason!))
  else {
    try {
      context.progress('redis: @iocp/redis, 1 consumer process')
      const p1 = await poolRow(ROWS.pool1, server, 1, context)
      context.progress('redis: @iocp/redis, 2 consumer processes')
      const p2 = await poolRow(ROWS.pool2, server, 2, context)
      context.progress('redis: BullMQ')
      const bull = await bullmqRow(server, context)
      context.progress('redis: raw streams ceilings')
      rows = [p1, p2, bull, ...(await ceilingRows(server, context))]
    } finally {
      await server.stop()
    }
  }
  return [
    {
      id: 'redis',
      title: 'Beyond one machine: a tiny task end to end through Redis (one private redis-server on loopback)',
      unit: 'tasks/s',
      better: 'higher' as const,
      subject: ROWS.pool2.id,
      rows,
    },
  ]
}

export const redis: Scenario = {
  name: 'redis',
  title: '6. Beyond one machine (Redis)',
  summary:
    'a tiny task end to end through @iocp/redis (RemotePool -> stream -> PoolForwarder + PortPool in 1 or 2 consumer processes -> reply), beside BullMQ with the same task on the same redis-server and the raw streams ceilings (XADD pipelined 256 at a time; XREADGROUP COUNT 256 + XACK).',
  run,
}
