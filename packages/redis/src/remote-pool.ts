/**
 * `RemotePool`: `run(payload)` from any machine; the task goes to a Redis stream, a
 * {@link PoolForwarder} on some machine runs it in its local PortPool, and the outcome comes back
 * on this client's own reply stream to the caller's promise.
 *
 * Tasks posted in one turn of the event loop go out in one script call per 256 tasks or 16 MiB
 * (pipelined, one round trip), each task one binary frame (frame.ts); replies are read in batches by a blocking
 * XREAD on a connection of their own, many frames to an entry.
 * Every `run()` settles exactly once: a second reply for a task (a task run twice, which
 * at-least-once delivery allows) is dropped and counted in `stats().duplicateReplies`.
 */
import { randomUUID } from 'node:crypto'
import { AbortError, QueueFullError } from '@iocp/core'
import type { Redis } from 'ioredis'
import { decode, encode, fromErrorRecord } from './codec.js'
import { connect, disconnect, type RedisTarget } from './connection.js'
import { DeadLetterError, RemoteClosedError, intOption, invalidType, stringOption } from './errors.js'
import { REPLY_FIELD, ReplyCode, TASK_FIELD, readReplyFrames, taskFrame, type Reply } from './frame.js'
import { keysOf, type Keys } from './keys.js'
import { postFramesArgs, withScripts, type ScriptedRedis } from './scripts.js'
import { batchLength } from './batch.js'
import { settledWithin } from './wait.js'

/** Options of {@link RemotePool.connect}. */
export interface RemotePoolOptions {
  /** Where Redis is. See {@link RedisTarget}. */
  redis: RedisTarget
  /**
   * The pool's name: forwarders started with the same name run its tasks. Keys live under
   * `iocp:{name}:`.
   * @default 'iocp'
   */
  name?: string
  /**
   * The most tasks in the stream at once (waiting, or held by a forwarder); `run()` past it
   * rejects with `QueueFullError`. Counted across every client of the pool.
   * @default Infinity
   */
  maxQueue?: number
  /**
   * How many times a task may be delivered (handler failures and consumers that died with it
   * both count) before it goes to the dead-letter stream and `run()` rejects with
   * {@link DeadLetterError}. Per task with {@link RemoteRunOptions.maxAttempts}.
   * @default 3
   */
  maxAttempts?: number
  /**
   * ms to wait for the first connection; past it (or on a refusal) `connect` rejects with
   * `RedisUnavailableError`.
   * @default 5000
   */
  connectTimeoutMs?: number
  /**
   * ms this client's reply stream outlives the client (renewed while it runs), so that a client
   * that dies leaves nothing behind for good.
   * @default 3600000
   */
  replyTtlMs?: number
}

/** Options of {@link RemotePool.run}. */
export interface RemoteRunOptions {
  /** The task module's export to run. @default the remote PortPool's default */
  name?: string
  /**
   * Cancels the task: the promise rejects at once with `AbortError`; a task not yet started
   * never runs; a running one sees its `ctx.signal` abort (on its machine, cooperatively).
   */
  signal?: AbortSignal
  /**
   * An idempotency key: once a task with this key has completed, its result is stored (for
   * `idempotencyTtlMs` of the forwarder) and a task with the same key, a redelivery or a new
   * `run()`, gets that result without running again.
   */
  idempotencyKey?: string
  /** See {@link RemotePoolOptions.maxAttempts}. */
  maxAttempts?: number
}

/** Counters of a {@link RemotePool}. */
export interface RemotePoolStats {
  /** `run()` calls accepted into the stream. */
  readonly submitted: number
  /** Runs settled (resolved or rejected, aborts and refusals included). */
  readonly settled: number
  /** Runs waiting for their outcome. */
  readonly pending: number
  /** Replies for tasks already settled: the trace of tasks run more than once. */
  readonly duplicateReplies: number
}

interface Pending {
  resolve(v: unknown): void
  reject(e: unknown): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

interface Outgoing {
  seq: number
  frame: Buffer
}

const BATCH = 256
/**
 * The most frame bytes in one post call (a batch is cut short past it; a single larger task
 * goes alone): the batch is one bulk string, and Redis refuses one over `proto-max-bulk-len`
 * (512 MiB by default).
 */
const BATCH_BYTES = 16 * 1024 * 1024

/** The caller's side of a pool that spans machines. See the file comment. */
export class RemotePool<Payload = unknown, Result = unknown> {
  readonly #cmd: ScriptedRedis
  readonly #replies: Redis
  readonly #keys: Keys
  readonly #client = randomUUID()
  readonly #replyKey: string
  readonly #replyKeyBytes: Buffer
  readonly #maxQueue: number
  readonly #maxAttempts: number
  readonly #replyTtlMs: number
  readonly #pending = new Map<number, Pending>()
  /** Aborted tasks that were posted: their (late) reply is not a duplicate. */
  readonly #aborted = new Set<number>()
  #outbox: Outgoing[] = []
  #flushing = false
  #seq = 0
  #submitted = 0
  #settled = 0
  #duplicates = 0
  #closed = false
  #lastReply = '0-0'
  #reading: Promise<void> = Promise.resolve()
  #ttlTimer: NodeJS.Timeout
  #replyConnId: number | undefined
  #idle: (() => void) | undefined

  private constructor(cmd: Redis, replies: Redis, keys: Keys, options: Required<Omit<RemotePoolOptions, 'redis' | 'name' | 'connectTimeoutMs'>>) {
    this.#cmd = withScripts(cmd)
    this.#replies = replies
    this.#keys = keys
    this.#replyKey = keys.reply(this.#client)
    this.#replyKeyBytes = Buffer.from(this.#replyKey)
    this.#maxQueue = options.maxQueue
    this.#maxAttempts = options.maxAttempts
    this.#replyTtlMs = options.replyTtlMs
    this.#ttlTimer = setInterval(() => void this.#touch(), Math.max(1000, Math.floor(this.#replyTtlMs / 4)))
    this.#ttlTimer.unref()
  }

  /**
   * Connects to Redis and returns a client of the pool `options.name`. Rejects with a
   * `TypeError` / `RangeError` naming a bad option, or `RedisUnavailableError`.
   */
  static async connect<P = unknown, R = unknown>(options: RemotePoolOptions): Promise<RemotePool<P, R>> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object with `redis`', options)
    const name = stringOption('options.name', options.name, 'iocp')
    const maxQueue = options.maxQueue === Infinity ? -1 : intOption('options.maxQueue', options.maxQueue, -1, 1)
    const maxAttempts = intOption('options.maxAttempts', options.maxAttempts, 3, 1, 1000)
    const timeout = intOption('options.connectTimeoutMs', options.connectTimeoutMs, 5000, 1)
    const replyTtlMs = intOption('options.replyTtlMs', options.replyTtlMs, 3_600_000, 1000)
    const cmd = await connect(options.redis, 'iocp-remote-pool', 'options.redis', timeout)
    let replies: Redis
    try {
      replies = await connect(options.redis, 'iocp-remote-pool-replies', 'options.redis', timeout)
    } catch (error) {
      cmd.disconnect()
      throw error
    }
    const pool = new RemotePool<P, R>(cmd, replies, keysOf(name), { maxQueue, maxAttempts, replyTtlMs })
    await pool.#start()
    return pool
  }

  async #start(): Promise<void> {
    await this.#makeReplyStream()
    this.#replyConnId = Number(await this.#replies.client('ID'))
    this.#replies.on('ready', () => {
      this.#replies.client('ID').then((id) => (this.#replyConnId = Number(id)), () => {})
    })
    this.#reading = this.#readReplies()
    // A Redis that came back without its data has lost the reply stream: make it again.
    this.#cmd.on('ready', () => void this.#makeReplyStream().catch(() => {}))
  }

  /**
   * Creates the reply stream if it does not exist (forwarders reply with NOMKSTREAM, so replies to
   * a client that is gone are dropped), keeping its entries if it does; then sets its TTL.
   */
  async #makeReplyStream(): Promise<void> {
    try {
      await this.#cmd.xgroup('CREATE', this.#replyKey, 'exists', '$', 'MKSTREAM')
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('BUSYGROUP')) throw error
    }
    await this.#touch()
  }

  /**
   * Runs `payload` on some machine's PortPool. Resolves with the task's result; rejects with
   * what it threw (rebuilt, see docs/scale-out.md), `AbortError`, `QueueFullError`,
   * {@link DeadLetterError}, {@link RemoteClosedError}, or a `TypeError` for bad options. Never
   * throws.
   */
  run(payload: Payload, options: RemoteRunOptions = {}): Promise<Result> {
    try {
      if (this.#closed) throw new RemoteClosedError('RemotePool is closed')
      if (options === null || typeof options !== 'object') throw invalidType('options', 'an object', options)
      const name = options.name === undefined ? '' : stringOption('options.name', options.name, '')
      const idem = options.idempotencyKey === undefined ? '' : stringOption('options.idempotencyKey', options.idempotencyKey, '')
      const maxAttempts = intOption('options.maxAttempts', options.maxAttempts, this.#maxAttempts, 1, 1000)
      const signal = options.signal
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal)
      if (signal?.aborted) return Promise.reject(new AbortError(signal.reason))
      let body: Buffer
      try {
        body = encode(payload)
      } catch (error) {
        throw Object.assign(new TypeError(`payload could not be serialized: ${(error as Error)?.message}`, { cause: error }), {
          code: 'ERR_INVALID_ARG_VALUE',
        })
      }
      const seq = ++this.#seq
      const frame = taskFrame({ seq, reply: this.#replyKeyBytes, name, idem, failures: 0, maxAttempts, cancellable: signal !== undefined, payload: body })
      return new Promise<Result>((resolve, reject) => {
        const p: Pending = { resolve: resolve as (v: unknown) => void, reject, signal, onAbort: undefined }
        if (signal) {
          p.onAbort = () => this.#abort(seq, signal.reason)
          signal.addEventListener('abort', p.onAbort, { once: true })
        }
        this.#pending.set(seq, p)
        this.#outbox.push({ seq, frame })
        if (!this.#flushing) {
          this.#flushing = true
          setImmediate(() => void this.#flush())
        }
      })
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Counters: see {@link RemotePoolStats}. */
  stats(): RemotePoolStats {
    return { submitted: this.#submitted, settled: this.#settled, pending: this.#pending.size, duplicateReplies: this.#duplicates }
  }

  /**
   * Waits for every pending `run()` to settle, then disconnects and deletes this client's reply
   * stream. `run()` rejects with {@link RemoteClosedError} from the call on.
   */
  async close(): Promise<void> {
    if (this.#closed) return this.#closing
    this.#closed = true
    this.#closing = (async () => {
      if (this.#pending.size > 0) await new Promise<void>((resolve) => (this.#idle = resolve))
      await this.#shutdown()
    })()
    return this.#closing
  }

  /** Rejects every pending `run()` with {@link RemoteClosedError} now, then closes. */
  async destroy(): Promise<void> {
    const was = this.#closed
    this.#closed = true
    for (const seq of [...this.#pending.keys()]) this.#settle(seq, false, new RemoteClosedError('RemotePool was destroyed'))
    if (was) return this.#closing
    this.#closing = this.#shutdown()
    return this.#closing
  }

  #closing: Promise<void> = Promise.resolve()

  async #shutdown(): Promise<void> {
    clearInterval(this.#ttlTimer)
    this.#stopReading = true
    if (this.#replyConnId !== undefined) await this.#cmd.client('UNBLOCK', this.#replyConnId).catch(() => {})
    // After a reconnection the id may be stale: then the blocked read is cut by disconnecting.
    await settledWithin(this.#reading, 500)
    this.#replies.disconnect()
    await this.#reading
    await this.#cmd.del(this.#replyKey).catch(() => {})
    await disconnect(this.#cmd)
  }

  #stopReading = false

  #settle(seq: number, ok: boolean, value: unknown): boolean {
    const p = this.#pending.get(seq)
    if (!p) return false
    this.#pending.delete(seq)
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort)
    this.#settled++
    if (ok) p.resolve(value)
    else p.reject(value)
    if (this.#pending.size === 0 && this.#idle) {
      const idle = this.#idle
      this.#idle = undefined
      idle()
    }
    return true
  }

  #abort(seq: number, reason: unknown): void {
    if (!this.#settle(seq, false, new AbortError(reason))) return
    // Still in the outbox: it never leaves.
    const at = this.#outbox.findIndex((o) => o.seq === seq)
    if (at >= 0) {
      this.#outbox.splice(at, 1)
      return
    }
    // Posted: mark it (a forwarder checks before running) and tell running forwarders.
    this.#aborted.add(seq)
    const key = this.#keys.cancel(this.#client, String(seq))
    this.#cmd
      .multi()
      .set(key, '1', 'PX', this.#replyTtlMs)
      .publish(this.#keys.cancelChannel, `${this.#client}:${seq}`)
      .exec()
      .catch(() => {})
  }

  async #flush(): Promise<void> {
    while (this.#outbox.length > 0) {
      // Every batch of this turn goes out at once: one connection keeps them in order, and
      // their round trips overlap (pipelined) instead of adding up.
      const sent: Array<Promise<void>> = []
      while (this.#outbox.length > 0) sent.push(this.#post(this.#outbox.splice(0, batchLength(this.#outbox, BATCH, BATCH_BYTES, (o) => o.frame.length))))
      await Promise.all(sent)
    }
    this.#flushing = false
  }

  async #post(batch: Outgoing[]): Promise<void> {
    let added: number
    try {
      added = await this.#cmd.iocpPostFrames(this.#keys.stream, ...postFramesArgs(this.#keys.group, this.#maxQueue, TASK_FIELD, batch.map((o) => o.frame)))
    } catch (error) {
      for (const o of batch) this.#settle(o.seq, false, error)
      return
    }
    this.#submitted += added
    for (let i = added; i < batch.length; i++) {
      this.#settle(batch[i]!.seq, false, new QueueFullError(`the remote pool's queue is full (maxQueue ${this.#maxQueue})`, this.#maxQueue))
    }
  }

  async #touch(): Promise<void> {
    await this.#cmd.pexpire(this.#replyKey, this.#replyTtlMs).catch(() => {})
  }

  async #readReplies(): Promise<void> {
    while (!this.#stopReading) {
      let res: unknown
      try {
        res = await this.#replies.xreadBuffer('COUNT', 1024, 'BLOCK', 5000, 'STREAMS', this.#replyKey, this.#lastReply)
      } catch {
        if (this.#stopReading) break
        // Redis is away: ioredis reconnects; try again shortly.
        await new Promise((r) => setTimeout(r, 100))
        continue
      }
      if (!res) continue
      const [[, entries]] = res as [[Buffer, Array<[Buffer, Buffer[]]>]]
      for (const [id, flat] of entries) {
        this.#lastReply = id.toString()
        this.#entry(flat)
      }
      // Replies read are done with: trim them (everything before the last one read).
      void this.#cmd.xtrim(this.#replyKey, 'MINID', this.#lastReply).catch(() => {})
    }
  }

  /** One reply entry: the frames of one settle call for this client. */
  #entry(flat: Buffer[]): void {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      if (flat[i]!.length !== 1 || flat[i]!.toString() !== REPLY_FIELD) continue
      try {
        readReplyFrames(flat[i + 1]!, this.#onReply)
      } catch {
        // A foreign or cut entry: its replies (if any) cannot be read; the runs wait, as for a lost reply.
      }
    }
  }

  readonly #onReply = (r: Reply): void => this.#reply(r)

  #reply({ seq, code, attempts, value }: Reply): void {
    if (!this.#pending.has(seq)) {
      if (!this.#aborted.delete(seq)) this.#duplicates++
      return
    }
    let decoded: unknown
    try {
      decoded = decode(value)
    } catch (error) {
      this.#settle(seq, false, error)
      return
    }
    if (code === ReplyCode.ok) this.#settle(seq, true, decoded)
    else if (code === ReplyCode.error) this.#settle(seq, false, fromErrorRecord(decoded))
    else if (code === ReplyCode.cancelled) this.#settle(seq, false, new AbortError('cancelled'))
    else {
      const last = decoded === undefined ? undefined : fromErrorRecord(decoded)
      this.#settle(
        seq,
        false,
        new DeadLetterError(`the task failed on all its ${attempts} attempts and went to ${this.#keys.dead}`, attempts, this.#keys.dead, last),
      )
    }
  }
}
