/**
 * Starts a private `redis-server` for tests, the bench and the examples: on a free loopback
 * port, in its own temporary directory (its AOF and RDB files live there), never a system
 * service. {@link RedisServer.stop} ends it and removes the directory; {@link RedisServer.restart}
 * stops it and starts it again on the same port and directory, which is how the fault tests take
 * Redis away for a while and bring it back with its append-only file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Turn on the append-only file (`appendonly yes`), so that a stop and restart keeps every
   * write the server acknowledged.
   * @default false
   */
  appendOnly?: boolean
  /**
   * `appendfsync` when {@link RedisServerOptions.appendOnly} is on: `'always'` fsyncs before
   * every reply (nothing acknowledged is lost even by a kill -9 of the server), `'everysec'` is
   * Redis' default.
   * @default 'always'
   */
  appendFsync?: 'always' | 'everysec' | 'no'
  /**
   * The `redis-server` executable.
   * @default process.env.REDIS_SERVER ?? 'redis-server'
   */
  executable?: string
  /**
   * ms to wait for the server to accept connections.
   * @default 10000
   */
  startTimeoutMs?: number
}

/** A running private `redis-server`. */
export interface RedisServer {
  /** Always `'127.0.0.1'`. */
  readonly host: string
  /** The TCP port it listens on (the same across {@link RedisServer.restart}). */
  readonly port: number
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string
  /** Its temporary directory (config, AOF, RDB, log). */
  readonly dir: string
  /** The server's process id (changes on restart). */
  readonly pid: number
  /** Stops the server (SIGTERM: Redis flushes its AOF and exits) without removing its directory. */
  halt(): Promise<void>
  /** Starts it again after {@link RedisServer.halt}, same port and directory. */
  resume(): Promise<void>
  /** {@link RedisServer.halt}, then {@link RedisServer.resume}. */
  restart(): Promise<void>
  /** Stops the server and removes its directory. Safe to call twice. */
  stop(): Promise<void>
}

/** Why a private `redis-server` could not start; `code` is `'ERR_IOCP_REDIS_SERVER'`. */
export class RedisServerError extends Error {
  /** Always `'ERR_IOCP_REDIS_SERVER'`. */
  readonly code = 'ERR_IOCP_REDIS_SERVER'
  override readonly name = 'RedisServerError'
}

/** Whether a `redis-server` executable can be run here (`redis-server --version` succeeds). */
export function redisServerAvailable(executable = defaultExecutable()): boolean {
  const r = spawnSync(executable, ['--version'], { stdio: 'ignore' })
  return r.status === 0
}

function defaultExecutable(): string {
  return process.env['REDIS_SERVER'] ?? 'redis-server'
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Resolves once `redis-server` answers PING on the port, or rejects at the deadline. */
async function waitReady(port: number, child: ChildProcess, deadline: number, log: string): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new RedisServerError(`redis-server exited during start-up (${child.exitCode ?? child.signalCode}); see ${log}`)
    }
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: '127.0.0.1', port })
      let buf = ''
      sock.setTimeout(500, () => (sock.destroy(), resolve(false)))
      sock.once('error', () => resolve(false))
      sock.on('data', (d) => {
        buf += d.toString()
        if (buf.includes('\r\n')) {
          sock.destroy()
          resolve(buf.startsWith('+PONG'))
        }
      })
      sock.once('connect', () => sock.write('PING\r\n'))
    })
    if (ok) return
    if (Date.now() > deadline) throw new RedisServerError(`redis-server did not answer on port ${port}; see ${log}`)
    // Polling a port that is about to open has no event to wait on; this is start-up, not a test.
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * Starts a private `redis-server` on a free loopback port in a new temporary directory.
 * Rejects with {@link RedisServerError} if the executable is missing or the server does not come
 * up within `startTimeoutMs`.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const executable = options.executable ?? defaultExecutable()
  if (!redisServerAvailable(executable)) {
    throw new RedisServerError(
      `cannot run ${JSON.stringify(executable)}: install Debian's redis-server (apt-get install -y redis-server) or set REDIS_SERVER`,
    )
  }
  const dir = mkdtempSync(join(tmpdir(), 'iocp-redis-'))
  const port = await freePort()
  const conf = join(dir, 'redis.conf')
  const log = join(dir, 'redis.log')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode yes',
      `dir ${dir}`,
      `logfile ${log}`,
      'daemonize no',
      'save ""',
      `appendonly ${options.appendOnly ? 'yes' : 'no'}`,
      `appendfsync ${options.appendFsync ?? 'always'}`,
      '',
    ].join('\n'),
  )
  const timeout = options.startTimeoutMs ?? 10_000
  let child: ChildProcess | undefined
  let stopped = false

  const launch = async (): Promise<void> => {
    // Not the sanitizer runtime a test run may preload into node (CI's ASan pass): redis-server
    // is not built for it.
    const { LD_PRELOAD: _preload, ASAN_OPTIONS: _asan, ...env } = process.env
    const c = spawn(executable, [conf], { stdio: 'ignore', env })
    child = c
    // A test runner that dies must not leave the server behind: it is ended with us.
    c.unref()
    await waitReady(port, c, Date.now() + timeout, log)
  }
  const halt = async (): Promise<void> => {
    const c = child
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      // unref'd while it runs (see launch); waiting for its exit must keep us alive
      c.ref()
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
    })
  }
  const exitHook = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  process.once('exit', exitHook)

  try {
    await launch()
  } catch (error) {
    exitHook()
    process.removeListener('exit', exitHook)
    rmSync(dir, { recursive: true, force: true })
    throw error
  }

  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    get pid() {
      return child?.pid ?? -1
    },
    halt,
    resume: launch,
    async restart() {
      await halt()
      await launch()
    },
    async stop() {
      if (stopped) return
      stopped = true
      await halt()
      process.removeListener('exit', exitHook)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
