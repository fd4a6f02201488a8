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
import { TaskField, decode, encode, errorRecord } from './codec.js'
import { connect, disconnect, type RedisTarget } from './connection.js'
import { intOption, invalidType, stringOption } from './errors.js'
import { GroupConsumer, type Entry } from './group-consumer.js'
import { ReplyCode, TASK_FIELD, readTaskFrame, replyFrame, withFailures, type TaskFrame } from './frame.js'
import { keysOf, type Keys } from './keys.js'
import { withScripts, type ScriptedRedis, type SettleCommands, type SettleReply } from './scripts.js'
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
  /** Entries that held no task frame this version reads (moved to the dead-letter stream, and reported on `'error'`). */
  readonly malformed: number
  /** Tasks held now. */
  readonly held: number
}

const NONE: SettleCommands = []

interface Task extends TaskFrame {
  readonly entry: Entry
  /** The whole frame (requeued as it is, with a new failure count). */
  readonly frame: Buffer
}

/** A task entry's frame, or an error for an entry that holds none (not a RemotePool task). */
function taskOf(entry: Entry): Task | Error {
  const frame = entry.fields.get(TASK_FIELD)
  try {
    const f = readTaskFrame(frame)
    // Spelled out: a spread made a dictionary-mode object per task, a tenth of the forwarder's time.
    return {
      seq: f.seq,
      reply: f.reply,
      name: f.name,
      idem: f.idem,
      failures: f.failures,
      maxAttempts: f.maxAttempts,
      cancellable: f.cancellable,
      payload: f.payload,
      entry,
      frame: frame!,
    }
  } catch (error) {
    return error as Error
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
  /** Reports a transient or data error on `'error'`, if anyone listens. */
  readonly #onError = (error: unknown): void => {
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }
  #closed = false
  #closing: Promise<void> | undefined
  #idle: (() => void) | undefined
  #s = { received: 0, completed: 0, retried: 0, deadLettered: 0, idempotentHits: 0, cancelled: 0, malformed: 0 }

  private constructor(cmd: Redis, blocking: Redis, sub: Redis, o: Required<Omit<PoolForwarderOptions, 'redis' | 'connectTimeoutMs'>>) {
    super()
    this.#cmd = withScripts(cmd)
    this.#blocking = blocking
    this.#sub = sub
    this.#keys = keysOf(o.name)
    this.#pool = o.pool
    this.#capacity = o.capacity
    this.#idemTtl = o.idempotencyTtlMs
    const onError = this.#onError
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

  #reply(t: Task, code: ReplyCode, value: Buffer | undefined, attempts = 0): SettleReply {
    return { key: t.reply, frame: replyFrame(t.seq, code, value, attempts) }
  }

  #deadLetter(t: Task, attempts: number, error: unknown): [SettleCommands, SettleReply] {
    this.#s.deadLettered++
    const last = error === undefined ? undefined : encode(errorRecord(error))
    // The dead-letter stream keeps the task readable by hand: one field per attribute.
    const fields: Array<string | Buffer> = [
      TaskField.seq, String(t.seq),
      TaskField.reply, t.reply,
      TaskField.name, t.name,
      TaskField.payload, t.payload,
      TaskField.idem, t.idem,
      TaskField.failures, String(t.failures),
      TaskField.maxAttempts, String(t.maxAttempts),
      TaskField.cancellable, t.cancellable ? '1' : '0',
    ]
    return [
      [['XADD', this.#keys.dead, '*', ...fields, 'id', t.entry.id, 'attempts', String(attempts), 'error', last ?? Buffer.alloc(0)]],
      this.#reply(t, ReplyCode.dead, last, attempts),
    ]
  }

  async #deliver(entries: Entry[]): Promise<void> {
    this.#s.received += entries.length
    this.#inFlight += entries.length
    const tasks: Task[] = []
    for (const entry of entries) {
      const t = taskOf(entry)
      if (t instanceof Error) {
        // Not a task this version can read: it can never run here. Moved to the dead-letter
        // stream as it was (nothing is lost), and reported.
        this.#s.malformed++
        const fields: Array<string | Buffer> = []
        for (const [k, v] of entry.fields) fields.push(k, v)
        this.#settleTask(entry.id, [['XADD', this.#keys.dead, '*', ...fields, 'id', entry.id, 'error', t.message]], undefined)
        this.#onError(new TypeError(`stream entry ${entry.id} is not a RemotePool task: ${t.message}`))
      } else tasks.push(t)
    }
    // One round trip for the cancellation markers and stored results this batch needs.
    const checks = tasks.filter((t) => t.cancellable || t.idem !== '')
    const cancelled = new Set<Task>()
    const stored = new Map<Task, Buffer>()
    if (checks.length > 0) {
      const pipe = this.#cmd.pipeline()
      for (const t of checks) {
        const reply = t.reply.toString()
        pipe.exists(this.#keys.cancel(reply.slice(reply.lastIndexOf(':') + 1), String(t.seq)))
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
        this.#finish(t, NONE, this.#reply(t, ReplyCode.cancelled, undefined))
      } else if (stored.has(t)) {
        this.#s.idempotentHits++
        this.#finish(t, NONE, this.#reply(t, ReplyCode.ok, stored.get(t)))
      } else if (attempts > t.maxAttempts) {
        // Delivered once too often: its earlier consumers died with it.
        this.#finish(t, ...this.#deadLetter(t, attempts - 1, undefined))
      } else {
        this.#run(t, attempts)
      }
    }
  }

  #run(t: Task, attempts: number): void {
    let ctl: AbortController | undefined
    let runKey = ''
    if (t.cancellable) {
      ctl = new AbortController()
      runKey = `${t.reply.toString()}|${t.seq}`
      this.#running.set(runKey, ctl)
    }
    let payload: unknown
    try {
      payload = decode(t.payload)
    } catch (error) {
      this.#failed(t, attempts, error, false)
      return
    }
    const options = t.name === '' ? (ctl ? { signal: ctl.signal } : undefined) : ctl ? { name: t.name, signal: ctl.signal } : { name: t.name }
    this.#pool.run(payload, options).then(
      (result) => {
        if (ctl) this.#running.delete(runKey)
        let value: Buffer
        try {
          value = encode(result)
        } catch (error) {
          this.#failed(t, attempts, error, false)
          return
        }
        this.#s.completed++
        const cmds: SettleCommands = t.idem === '' ? NONE : [['SET', this.#keys.done(t.idem), value, 'PX', this.#idemTtl]]
        this.#finish(t, cmds, this.#reply(t, ReplyCode.ok, value))
      },
      (error: unknown) => {
        if (ctl) this.#running.delete(runKey)
        this.#failed(t, attempts, error, ctl?.signal.aborted === true)
      },
    )
  }

  #failed(t: Task, attempts: number, error: unknown, cancelled: boolean): void {
    if (cancelled) {
      this.#s.cancelled++
      this.#finish(t, NONE, this.#reply(t, ReplyCode.cancelled, undefined))
    } else if (attempts >= t.maxAttempts) {
      this.#finish(t, ...this.#deadLetter(t, attempts, error))
    } else {
      // Back in the stream for another attempt (any forwarder), carrying its failure count.
      this.#s.retried++
      this.#finish(t, [['XADD', this.#keys.stream, '*', TASK_FIELD, withFailures(t.frame, attempts)]], undefined)
    }
  }

  #finish(t: Task, commands: SettleCommands, reply: SettleReply | undefined): void {
    this.#settleTask(t.entry.id, commands, reply)
  }

  #settleTask(id: string, commands: SettleCommands, reply: SettleReply | undefined): void {
    this.#settler.settle(id, commands, reply)
    if (--this.#inFlight === 0 && this.#idle) {
      const idle = this.#idle
      this.#idle = undefined
      void this.#settler.flushed().then(idle)
    }
  }
}

