/**
 * `PoolForwarder`: runs on each machine, takes tasks of a {@link RemotePool} from the consumer
 * group and runs them in a local `PortPool`, then writes each outcome to its caller's reply
 * stream and acknowledges the task in one atomic step (settler.ts).
 *
 * It holds at most `capacity` tasks at once (running or queued in the local pool): it asks Redis
 * only for what it has room for. Attempts are counted as deliveries plus earlier handler
 * failures; a task past `maxAttempts` goes to the dead-letter stream and its caller gets a
 * `DeadLetterError`.
 */
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { AbortError, type PortPool } from '@iocp/core'
import type { Redis } from 'ioredis'
import { ReplyField, ReplyStatus, TaskField, decode, encode, errorRecord } from './codec.js'
import { connect, disconnect, type RedisTarget } from './connection.js'
import { intOption, invalidType, stringOption } from './errors.js'
import { GroupConsumer, type Entry } from './group-consumer.js'
import { keysOf, type Keys } from './keys.js'
import { withScripts, type ScriptedRedis, type SettleCommands } from './scripts.js'
import { Settler } from './settler.js'

/** Options of {@link PoolForwarder.start}. */
export interface PoolForwarderOptions {
  /** Where Redis is. See {@link RedisTarget}. */
  redis: RedisTarget
  /** The local pool that runs the tasks. The forwarder never closes it. */
  pool: PortPool
  /** The pool's name, as given to {@link RemotePool.connect}. @default 'iocp' */
  name?: string
  /**
   * This consumer's name in the group: unique per process.
   * @default `${hostname}:${pid}:${random}`
   */
  consumer?: string
  /**
   * The most tasks this machine holds at once (running, or waiting in the local pool). A slow
   * machine holds no more than this; a larger value hides Redis' round trips for tiny tasks.
   * @default 256
   */
  capacity?: number
  /**
   * ms a task may stay unrenewed before another forwarder takes it over. Live forwarders renew
   * theirs every third of it, so this is about how fast a dead machine's tasks are recovered.
   * @default 30000
   */
  claimIdleMs?: number
  /**
   * ms a stored result of an idempotency key is kept.
   * @default 86400000
   */
  idempotencyTtlMs?: number
  /** ms to wait for the first connection. @default 5000 */
  connectTimeoutMs?: number
}

/** Counters of a {@link PoolForwarder}. */
export interface PoolForwarderStats {
  /** Tasks taken from the group (reclaimed ones included). */
  readonly received: number
  /** Tasks taken over from a forwarder that stopped renewing them. */
  readonly reclaimed: number
  /** Tasks run that succeeded. */
  readonly completed: number
  /** Tasks run that failed and were put back for another attempt. */
  readonly retried: number
  /** Tasks sent to the dead-letter stream. */
  readonly deadLettered: number
  /** Tasks answered from a stored idempotent result, without running. */
  readonly idempotentHits: number
  /** Tasks skipped because their caller cancelled them. */
  readonly cancelled: number
  /** Outcomes dropped because another forwarder had taken the task over meanwhile. */
  readonly superseded: number
  /** Tasks held now. */
  readonly held: number
}

interface Task {
  readonly entry: Entry
  readonly seq: string
  readonly reply: string
  readonly name: string
  readonly payload: Buffer | undefined
  readonly idem: string
  readonly failures: number
  readonly maxAttempts: number
  readonly cancellable: boolean
  readonly fields: Map<string, Buffer>
}

function taskOf(entry: Entry): Task {
  const f = entry.fields
  const str = (k: string): string => f.get(k)?.toString() ?? ''
  return {
    entry,
    seq: str(TaskField.seq),
    reply: str(TaskField.reply),
    name: str(TaskField.name),
    payload: f.get(TaskField.payload),
    idem: str(TaskField.idem),
    failures: Number(str(TaskField.failures)) || 0,
    maxAttempts: Number(str(TaskField.maxAttempts)) || 1,
    cancellable: str(TaskField.cancellable) === '1',
    fields: f,
  }
}

/** A machine's side of a {@link RemotePool}. See the file comment. */
export class PoolForwarder extends EventEmitter {
  readonly #cmd: ScriptedRedis
  readonly #blocking: Redis
  readonly #sub: Redis
  readonly #keys: Keys
  readonly #pool: PortPool
  readonly #capacity: number
  readonly #idemTtl: number
  readonly #consumer: GroupConsumer
  readonly #settler: Settler
  /** Running tasks that can be cancelled, by `${reply}|${seq}`. */
  readonly #running = new Map<string, AbortController>()
  #inFlight = 0
  #closed = false
  #closing: Promise<void> | undefined
  #idle: (() => void) | undefined
  #s = { received: 0, completed: 0, retried: 0, deadLettered: 0, idempotentHits: 0, cancelled: 0 }

  private constructor(cmd: Redis, blocking: Redis, sub: Redis, o: Required<Omit<PoolForwarderOptions, 'redis' | 'connectTimeoutMs'>>) {
    super()
    this.#cmd = withScripts(cmd)
    this.#blocking = blocking
    this.#sub = sub
    this.#keys = keysOf(o.name)
    this.#pool = o.pool
    this.#capacity = o.capacity
    this.#idemTtl = o.idempotencyTtlMs
    const onError = (error: unknown): void => {
      if (this.listenerCount('error') > 0) this.emit('error', error)
    }
    this.#consumer = new GroupConsumer({
      cmd: this.#cmd,
      blocking,
      stream: this.#keys.stream,
      group: this.#keys.group,
      consumer: o.consumer,
      claimIdleMs: o.claimIdleMs,
      blockMs: 5000,
      room: () => this.#capacity - this.#consumer.held,
      deliver: (entries) => void this.#deliver(entries),
      onError,
    })
    this.#settler = new Settler(this.#cmd, this.#keys.stream, this.#keys.group, o.consumer, (ids) => this.#consumer.release(ids), onError)
  }

  /**
   * Connects (three connections: commands, the blocking read, cancellations), joins the group
   * and starts taking tasks. Rejects with a `TypeError` / `RangeError` naming a bad option, or
   * `RedisUnavailableError`.
   */
  static async start(options: PoolForwarderOptions): Promise<PoolForwarder> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object with `redis` and `pool`', options)
    const pool = options.pool
    if (pool === null || typeof pool !== 'object' || typeof (pool as PortPool).run !== 'function') {
      throw invalidType('options.pool', 'a PortPool', pool)
    }
    const name = stringOption('options.name', options.name, 'iocp')
    const consumer = stringOption('options.consumer', options.consumer, `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`)
    const capacity = intOption('options.capacity', options.capacity, 256, 1, 100_000)
    const claimIdleMs = intOption('options.claimIdleMs', options.claimIdleMs, 30_000, 30)
    const idempotencyTtlMs = intOption('options.idempotencyTtlMs', options.idempotencyTtlMs, 86_400_000, 1)
    const timeout = intOption('options.connectTimeoutMs', options.connectTimeoutMs, 5000, 1)
    const conns: Redis[] = []
    try {
      for (const role of ['cmd', 'read', 'cancel']) conns.push(await connect(options.redis, `iocp-forwarder-${role}`, 'options.redis', timeout))
    } catch (error) {
      for (const c of conns) c.disconnect()
      throw error
    }
    const f = new PoolForwarder(conns[0]!, conns[1]!, conns[2]!, { pool, name, consumer, capacity, claimIdleMs, idempotencyTtlMs })
    await f.#start()
    return f
  }

  async #start(): Promise<void> {
    this.#sub.on('message', (_channel: string, message: string) => {
      const at = message.lastIndexOf(':')
      const ctl = this.#running.get(`${this.#keys.reply(message.slice(0, at))}|${message.slice(at + 1)}`)
      ctl?.abort(new AbortError('cancelled by the caller'))
    })
    await this.#sub.subscribe(this.#keys.cancelChannel)
    await this.#consumer.start()
  }

  /** Counters: see {@link PoolForwarderStats}. */
  stats(): PoolForwarderStats {
    return {
      ...this.#s,
      reclaimed: this.#consumer.reclaimed,
      superseded: this.#settler.skipped,
      held: this.#consumer.held,
    }
  }

  /**
   * Stops taking tasks, waits for the tasks it holds to finish and their outcomes to be in
   * Redis, then disconnects. The local pool stays open (it is the caller's).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    await this.#consumer.stop()
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve))
    await this.#settler.flushed()
    await this.#consumer.end()
    await Promise.all([disconnect(this.#cmd), disconnect(this.#blocking), disconnect(this.#sub)])
  }

  #replyCommands(t: Task, status: string, value: Buffer | undefined, extra: Array<string | Buffer> = []): Array<Array<string | number | Buffer>> {
    return [
      // NOMKSTREAM: a client that is gone (its reply stream expired) gets nothing.
      ['XADD', t.reply, 'NOMKSTREAM', '*', ReplyField.seq, t.seq, ReplyField.status, status, ReplyField.value, value ?? Buffer.alloc(0), ...extra],
    ]
  }

  #deadLetter(t: Task, attempts: number, error: unknown): SettleCommands {
    this.#s.deadLettered++
    const last = error === undefined ? undefined : encode(errorRecord(error))
    const fields: Array<string | Buffer> = []
    for (const [k, v] of t.fields) fields.push(k, v)
    return [
      ['XADD', this.#keys.dead, '*', ...fields, 'id', t.entry.id, 'attempts', String(attempts), 'error', last ?? Buffer.alloc(0)],
      ...this.#replyCommands(t, ReplyStatus.dead, last, [ReplyField.attempts, String(attempts)]),
    ]
  }

  async #deliver(entries: Entry[]): Promise<void> {
    const tasks = entries.map(taskOf)
    this.#s.received += tasks.length
    this.#inFlight += tasks.length
    // One round trip for the cancellation markers and stored results this batch needs.
    const checks = tasks.filter((t) => t.cancellable || t.idem !== '')
    const cancelled = new Set<Task>()
    const stored = new Map<Task, Buffer>()
    if (checks.length > 0) {
      const pipe = this.#cmd.pipeline()
      for (const t of checks) {
        pipe.exists(this.#keys.cancel(t.reply.slice(t.reply.lastIndexOf(':') + 1), t.seq))
        pipe.getBuffer(this.#keys.done(t.idem || '\u0000'))
      }
      const res = (await pipe.exec().catch(() => null)) ?? []
      checks.forEach((t, i) => {
        if (res[2 * i]?.[1] === 1) cancelled.add(t)
        const done = res[2 * i + 1]?.[1]
        if (t.idem !== '' && Buffer.isBuffer(done)) stored.set(t, done)
      })
    }
    for (const t of tasks) {
      const attempts = t.failures + t.entry.deliveries
      if (cancelled.has(t)) {
        this.#s.cancelled++
        this.#finish(t, this.#replyCommands(t, ReplyStatus.cancelled, undefined))
      } else if (stored.has(t)) {
        this.#s.idempotentHits++
        this.#finish(t, this.#replyCommands(t, ReplyStatus.ok, stored.get(t)))
      } else if (attempts > t.maxAttempts) {
        // Delivered once too often: its earlier consumers died with it.
        this.#finish(t, this.#deadLetter(t, attempts - 1, undefined))
      } else {
        this.#run(t, attempts)
      }
    }
  }

  #run(t: Task, attempts: number): void {
    let ctl: AbortController | undefined
    const runKey = `${t.reply}|${t.seq}`
    if (t.cancellable) {
      ctl = new AbortController()
      this.#running.set(runKey, ctl)
    }
    let payload: unknown
    try {
      payload = decode(t.payload)
    } catch (error) {
      this.#failed(t, attempts, error, false)
      return
    }
    this.#pool.run(payload, { ...(t.name ? { name: t.name } : {}), ...(ctl ? { signal: ctl.signal } : {}) }).then(
      (result) => {
        this.#running.delete(runKey)
        let value: Buffer
        try {
          value = encode(result)
        } catch (error) {
          this.#failed(t, attempts, error, false)
          return
        }
        this.#s.completed++
        const cmds = this.#replyCommands(t, ReplyStatus.ok, value)
        if (t.idem !== '') cmds.push(['SET', this.#keys.done(t.idem), value, 'PX', this.#idemTtl])
        this.#finish(t, cmds)
      },
      (error: unknown) => {
        this.#running.delete(runKey)
        this.#failed(t, attempts, error, ctl?.signal.aborted === true)
      },
    )
  }

  #failed(t: Task, attempts: number, error: unknown, cancelled: boolean): void {
    if (cancelled) {
      this.#s.cancelled++
      this.#finish(t, this.#replyCommands(t, ReplyStatus.cancelled, undefined))
    } else if (attempts >= t.maxAttempts) {
      this.#finish(t, this.#deadLetter(t, attempts, error))
    } else {
      // Back in the stream for another attempt (any forwarder), carrying its failure count.
      this.#s.retried++
      const fields: Array<string | Buffer> = []
      for (const [k, v] of t.fields) fields.push(k, k === TaskField.failures ? String(attempts) : v)
      this.#finish(t, [['XADD', this.#keys.stream, '*', ...fields]])
    }
  }

  #finish(t: Task, commands: SettleCommands): void {
    this.#settler.settle(t.entry.id, commands)
    if (--this.#inFlight === 0 && this.#idle) {
      const idle = this.#idle
      this.#idle = undefined
      void this.#settler.flushed().then(idle)
    }
  }
}

