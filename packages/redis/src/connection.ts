/**
 * Connecting to Redis: where the package's one client (ioredis) is configured.
 *
 * Every object of this package takes a {@link RedisTarget}: a URL, ioredis options, or an
 * ioredis client of yours (which is then duplicated, never closed by us). The first connection
 * must succeed (else {@link RedisUnavailableError}, naming the address); after that ioredis
 * reconnects on its own, and commands wait for the connection instead of failing
 * (`maxRetriesPerRequest: null`, the offline queue on), which is what lets both sides ride out a
 * Redis restart.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { RedisUnavailableError, invalidType } from './errors.js'

/** Where Redis is: `'redis://host:port/db'`, ioredis options, or an ioredis `Redis` client. */
export type RedisTarget = string | RedisOptions | Redis

/** The address of a target, for messages. */
function address(client: Redis): string {
  const o = client.options
  return o.path ? o.path : `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`
}

/** Options we set on every connection (the user's own options win only where listed here). */
const RESILIENT: RedisOptions = {
  lazyConnect: true,
  // Commands wait across reconnections instead of failing after 20 retries.
  maxRetriesPerRequest: null,
  enableOfflineQueue: true,
  // Back off to at most one second between attempts, forever.
  retryStrategy: (times: number) => Math.min(50 * times, 1000),
}

/**
 * Opens a new connection to `target`. Rejects with {@link RedisUnavailableError} if the first
 * connection fails or takes longer than `timeoutMs`; the half-open client is then disconnected.
 */
export async function connect(target: RedisTarget, name: string, what: string, timeoutMs: number): Promise<Redis> {
  let client: Redis
  if (typeof target === 'string') client = new Redis(target, { ...RESILIENT, connectionName: name })
  else if (target instanceof Redis) client = target.duplicate({ ...RESILIENT, connectionName: name })
  else if (target !== null && typeof target === 'object') client = new Redis({ ...target, ...RESILIENT, connectionName: name })
  else throw invalidType(what, "a redis:// URL, ioredis options or an ioredis client", target)

  let firstError: unknown
  // ioredis reports socket errors as 'error' events; without a listener they would be printed.
  const onError = (error: unknown): void => {
    firstError ??= error
  }
  client.on('error', onError)
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (error) {
    client.disconnect()
    const cause = firstError ?? error
    const reason = (cause as { code?: string; message?: string })?.code ?? (cause as Error)?.message ?? String(cause)
    throw new RedisUnavailableError(`Redis at ${address(client)} cannot be reached (${reason})`, { cause })
  } finally {
    clearTimeout(timer)
  }
  return client
}

/** Ends a connection we opened: QUIT when connected (pending replies arrive first), else disconnect. */
export async function disconnect(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit()
      return
    } catch {
      // fall through: the connection is going anyway
    }
  }
  client.disconnect()
}
