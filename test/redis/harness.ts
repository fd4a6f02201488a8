// Helpers of the @iocp/redis suites: a private redis-server per suite (the repo's launcher,
// @iocp/redis/server: a free loopback port, its own temporary directory, stopped afterwards), and
// consumer processes (fixtures/redis-consumer.mjs) whose stdout lines are awaited as events. No
// mock Redis, no sleeps: waits resolve on a line, a settle count or a process exit.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll } from 'vitest'
import { PortPool } from '@iocp/core'
import { PoolForwarder, RemotePool } from '@iocp/redis'
import { startRedisServer, type RedisServer, type RedisServerOptions } from '@iocp/redis/server'
import { Redis } from 'ioredis'

/** Starts a redis-server before the suite and stops it after; `get()` returns it. */
export function useRedisServer(options: RedisServerOptions = {}): { get(): RedisServer } {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await startRedisServer(options)
  })
  afterAll(async () => {
    await server?.stop()
  })
  return {
    get() {
      if (!server) throw new Error('redis-server did not start')
      return server
    },
  }
}

/** What {@link useInProcessPool} makes. */
export interface InProcessPool {
  pool: PortPool
  forwarder: PoolForwarder
  client: RemotePool
  admin: Redis
}

/**
 * Before the suite: a PortPool on `task` (`threads` threads, as many at once), a PoolForwarder
 * serving it under `name`, a RemotePool client of that name and a plain connection, handed to
 * `use`; after the suite, all of them closed.
 */
export function useInProcessPool(
  redis: { get(): RedisServer },
  task: URL,
  options: { name: string; threads: number; claimIdleMs: number },
  use: (made: InProcessPool) => void,
): void {
  const made: Partial<InProcessPool> = {}
  beforeAll(async () => {
    made.pool = new PortPool({ filename: task, threads: options.threads, concurrency: options.threads })
    made.forwarder = await PoolForwarder.start({ redis: redis.get().url, pool: made.pool, name: options.name, claimIdleMs: options.claimIdleMs })
    made.client = await RemotePool.connect({ redis: redis.get().url, name: options.name })
    made.admin = new Redis(redis.get().url)
    use(made as InProcessPool)
  })
  afterAll(async () => {
    await made.client?.close()
    await made.forwarder?.close()
    await made.pool?.close()
    made.admin?.disconnect()
  })
}

/** A pool name no other test uses. */
export function uniqueName(): string {
  return `test-${randomUUID().slice(0, 8)}`
}

/** A consumer process and what it printed. */
export interface Consumer {
  readonly child: ChildProcess
  readonly pid: number
  /** Every stdout line so far. */
  readonly lines: string[]
  /** Resolves when `count` lines (past or future) satisfy `match`. */
  waitLines(match: (line: string) => boolean, count?: number): Promise<string[]>
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals>
  /** SIGTERM: the consumer closes its forwarder gracefully and prints `stats <json>`; resolves with them. */
  stop(): Promise<Record<string, number>>
}

/** Starts fixtures/redis-consumer.mjs with `env` and waits for its `ready` line. */
export async function startConsumer(env: Record<string, string>): Promise<Consumer> {
  const child = spawn(process.execPath, [new URL('../fixtures/redis-consumer.mjs', import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines: string[] = []
  const waiters: Array<{ match: (l: string) => boolean; count: number; resolve: (l: string[]) => void }> = []
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!
      const hits = lines.filter(w.match)
      if (hits.length >= w.count) {
        waiters.splice(i, 1)
        w.resolve(hits)
      }
    }
  }
  let partial = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString()
    const parts = partial.split('\n')
    partial = parts.pop()!
    lines.push(...parts)
    check()
  })
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)))
  const waitLines = (match: (l: string) => boolean, count = 1): Promise<string[]> =>
    new Promise((resolve, reject) => {
      waiters.push({ match, count, resolve })
      check()
      void exited.then((how) => reject(new Error(`consumer ${child.pid} exited (${how}) before printing the lines awaited`)))
    })
  const consumer: Consumer = {
    child,
    pid: child.pid!,
    lines,
    waitLines,
    exited,
    async stop() {
      const stats = waitLines((l) => l.startsWith('stats '))
      child.kill('SIGTERM')
      const [line] = await stats
      await exited
      return JSON.parse(line!.slice(6)) as Record<string, number>
    },
  }
  await waitLines((l) => l.startsWith('ready '))
  return consumer
}
