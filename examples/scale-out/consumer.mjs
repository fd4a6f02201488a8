// One "machine": a local PortPool fed from Redis by a PoolForwarder. Run one per machine:
//   REDIS_URL=redis://host:6379 node consumer.mjs
// It takes tasks of the pool named 'primes' until SIGTERM / SIGINT, then finishes what it holds
// (their results go back to their callers) and exits.
import { PortPool } from '@iocp/core'
import { PoolForwarder } from '@iocp/redis'

const pool = new PortPool({ filename: new URL('./tasks.mjs', import.meta.url), concurrency: 2 })
const forwarder = await PoolForwarder.start({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  pool,
  name: 'primes',
  capacity: 64, // at most 64 tasks held here: a slow machine does not hoard work
  claimIdleMs: 5000, // a dead machine's tasks go to the others after 5 s
})
forwarder.on('error', (error) => console.error(`consumer ${process.pid}: ${error.message} (reconnecting)`))
process.stdout.write(`ready ${process.pid}\n`)

const stop = async () => {
  await forwarder.close()
  await pool.close()
  const { completed, reclaimed } = forwarder.stats()
  process.stdout.write(`consumer ${process.pid}: ran ${completed} tasks (${reclaimed} reclaimed from dead consumers)\n`)
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
