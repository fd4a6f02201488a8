/**
 * A consumer process of the redis scenario: a PortPool running the echo task, fed by a
 * PoolForwarder. Environment: REDIS_URL, POOL_NAME, THREADS. Prints `ready` once it reads tasks;
 * on SIGTERM closes the forwarder and the pool, then exits.
 */
import { fileURLToPath } from 'node:url'
import { PortPool } from '@iocp/core'
import { PoolForwarder } from '@iocp/redis'

const threads = Number(process.env['THREADS'] ?? 1)
const pool = new PortPool({ filename: fileURLToPath(new URL('../tasks/echo.cjs', import.meta.url)), threads, concurrency: threads })
const forwarder = await PoolForwarder.start({
  redis: process.env['REDIS_URL']!,
  pool,
  name: process.env['POOL_NAME']!,
  capacity: 1024,
})
process.stdout.write('ready\n')
process.once('SIGTERM', () => {
  void forwarder
    .close()
    .then(() => pool.close())
    .then(() => process.exit(0))
})
