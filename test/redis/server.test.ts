// The repo's redis-server launcher (@iocp/redis/server): a private server on a free loopback port
// in its own directory; with the AOF on, a halt and resume keeps what it acknowledged; stop()
// removes the directory; a missing executable is a clear error.
import { existsSync } from 'node:fs'
import { expect, it } from 'vitest'
import { RedisServerError, redisServerAvailable, startRedisServer } from '@iocp/redis/server'
import { Redis } from 'ioredis'

it('starts a private server, keeps acknowledged writes across a restart with the AOF, and cleans up', async () => {
  const server = await startRedisServer({ appendOnly: true })
  expect(server.host).toBe('127.0.0.1')
  expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
  const client = new Redis(server.url, { maxRetriesPerRequest: null })
  client.on('error', () => {})
  await client.set('kept', 'yes')
  const firstPid = server.pid
  await server.restart()
  expect(server.pid).not.toBe(firstPid)
  expect(await client.get('kept')).toBe('yes')
  client.disconnect()
  await server.stop()
  expect(existsSync(server.dir)).toBe(false)
  await server.stop() // twice is fine
})

it('rejects with RedisServerError when the executable cannot run', async () => {
  expect(redisServerAvailable('/nonexistent/redis-server')).toBe(false)
  const error = (await startRedisServer({ executable: '/nonexistent/redis-server' }).catch((e: unknown) => e)) as RedisServerError
  expect(error).toBeInstanceOf(RedisServerError)
  expect(error.code).toBe('ERR_IOCP_REDIS_SERVER')
  expect(error.message).toContain('apt-get install -y redis-server')
})
