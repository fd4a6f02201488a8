#!/usr/bin/env node
/**
 * `iocp-redis-server [--aof]`: starts a private redis-server (see {@link startRedisServer}),
 * prints its URL on stdout, and stops it (removing its directory) on SIGINT / SIGTERM.
 */
import { startRedisServer } from './redis-server.js'

const server = await startRedisServer({ appendOnly: process.argv.includes('--aof') })
process.stdout.write(`${server.url}\n`)
const stop = (): void => {
  void server.stop().then(() => process.exit(0))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
setInterval(() => {}, 1 << 30)
