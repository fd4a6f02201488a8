// Scale-out example: one producer and two consumer processes on one Redis. Run it with
// `pnpm scale-out` (options: --tasks N). Set REDIS_URL to use your own Redis; without it a
// private redis-server is started (Debian's `redis-server` must be installed) and stopped after.
//
//   this process (producer): RemotePool.run() ──XADD──▶ stream iocp:{primes}:tasks
//   consumer.mjs x 2: PoolForwarder ──XREADGROUP──▶ local PortPool ──reply stream──▶ run()'s promise
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { RemotePool } from '@iocp/redis'
import { startRedisServer } from '@iocp/redis/server'

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '2000' } } })
const tasks = Number(values.tasks)

const server = process.env.REDIS_URL ? undefined : await startRedisServer()
const url = server?.url ?? process.env.REDIS_URL
console.log(`redis: ${url}${server ? ' (private redis-server, stopped at the end)' : ''}`)

const consumers = []
for (let i = 0; i < 2; i++) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./consumer.mjs', import.meta.url))], {
    env: { ...process.env, REDIS_URL: url },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  child.stdout.setEncoding('utf8')
  const [first] = await once(child.stdout, 'data')
  if (!first.startsWith('ready')) throw new Error(`consumer said ${first}`)
  child.stdout.on('data', (text) => process.stdout.write(text))
  consumers.push(child)
}

const pool = await RemotePool.connect({ redis: url, name: 'primes' })
const started = performance.now()
const results = await Promise.all(Array.from({ length: tasks }, (_, i) => pool.run({ limit: 1000 + (i % 1000) })))
const seconds = (performance.now() - started) / 1000
const byPid = new Map()
for (const r of results) byPid.set(r.pid, (byPid.get(r.pid) ?? 0) + 1)
console.log(`${tasks} tasks in ${seconds.toFixed(2)} s; results per consumer process:`)
for (const [pid, n] of byPid) console.log(`  pid ${pid}: ${n}`)
const check = results.every((r, i) => r.limit === 1000 + (i % 1000))
console.log(check ? 'every result is its own task' : 'MISMATCH')
await pool.close()

for (const child of consumers) child.kill('SIGTERM')
await Promise.all(consumers.map((c) => once(c, 'exit')))
await server?.stop()
process.exitCode = check ? 0 : 1
