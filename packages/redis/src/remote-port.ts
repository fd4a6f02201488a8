/**
 * `RemotePort`: `post` / `postMany` to a completion port that lives in Redis (a stream read by a
 * consumer group of {@link Forwarder}s, one per machine). Packets posted in one turn of the event
 * loop go out together, 256 per script call, pipelined. With a `capacity`, a packet that would
 * take the stream's unacknowledged packets past it is refused with `PortFullError`, as a local
 * port with a capacity refuses it.
 */
import { PortFullError, type PacketBatch } from '@iocp/core'
import type { Redis } from 'ioredis'
import { connect, disconnect, type RedisTarget } from './connection.js'
import { RemoteClosedError, intOption, invalidType, stringOption } from './errors.js'
import { keysOf, type Keys } from './keys.js'
import { PACKET_FIELDS, packetFields } from './packet-codec.js'
import { withScripts, type ScriptedRedis } from './scripts.js'

/** Options of {@link RemotePort.connect}. */
export interface RemotePortOptions {
  /** Where Redis is. See {@link RedisTarget}. */
  redis: RedisTarget
  /** The port's name; forwarders started with it feed its packets to their local ports. @default 'iocp-port' */
  name?: string
  /**
   * The most packets not yet acknowledged (queued in the stream, or held by a forwarder or a
   * local thread); a post past it rejects with `PortFullError`. Counted across every poster.
   * @default Infinity
   */
  capacity?: number
  /** ms to wait for the first connection. @default 5000 */
  connectTimeoutMs?: number
}

interface Outgoing {
  fields: Array<string | Buffer>
  /** The postMany() call it belongs to: once one of its packets is refused, the rest are too. */
  group: { refused: boolean } | undefined
  resolve(posted: boolean): void
  reject(error: unknown): void
}

const BATCH = 256

/** The posting side of a port that spans machines. See the file comment. */
export class RemotePort {
  readonly #redis: ScriptedRedis
  readonly #keys: Keys
  readonly #capacity: number
  #outbox: Outgoing[] = []
  #flushing: Promise<void> | undefined
  #closed = false
  #posted = 0

  private constructor(redis: Redis, keys: Keys, capacity: number) {
    this.#redis = withScripts(redis)
    this.#keys = keys
    this.#capacity = capacity
  }

  /** Connects. Rejects with a `TypeError` / `RangeError` naming a bad option, or `RedisUnavailableError`. */
  static async connect(options: RemotePortOptions): Promise<RemotePort> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object with `redis`', options)
    const name = stringOption('options.name', options.name, 'iocp-port')
    const capacity = options.capacity === Infinity ? -1 : intOption('options.capacity', options.capacity, -1, 1)
    const timeout = intOption('options.connectTimeoutMs', options.connectTimeoutMs, 5000, 1)
    return new RemotePort(await connect(options.redis, 'iocp-remote-port', 'options.redis', timeout), keysOf(name), capacity)
  }

  /** Packets this port has posted. */
  get posted(): number {
    return this.#posted
  }

  /**
   * Posts one packet (as `CompletionPort.post`). Resolves once Redis has it. Rejects with
   * `PortFullError` past `capacity`, `RemoteClosedError` after `close()`, or a `TypeError` /
   * `RangeError` naming the bad argument (nothing posted). Never throws.
   */
  post(key: number | bigint, bytes: number = 0, overlapped: number | bigint = 0, data?: Uint8Array): Promise<void> {
    try {
      if (this.#closed) throw new RemoteClosedError('RemotePort is closed')
      const fields = packetFields(key, bytes, overlapped, data)
      return new Promise<void>((resolve, reject) => {
        this.#queue({
          fields,
          group: undefined,
          resolve: (posted) =>
            posted ? resolve() : reject(new PortFullError(`the remote port is full (capacity ${this.#capacity})`, this.#capacity)),
          reject,
        })
      })
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Posts every packet of `batch` in order (as `CompletionPort.postMany`) and resolves with how
   * many were posted: all, or with a `capacity`, the first ones that fit. Rejects with a
   * `TypeError` naming `batch`, or `RemoteClosedError`.
   */
  postMany(batch: PacketBatch): Promise<number> {
    try {
      if (this.#closed) throw new RemoteClosedError('RemotePort is closed')
      if (batch === null || typeof batch !== 'object' || typeof (batch as PacketBatch).bytes !== 'function') {
        throw invalidType('batch', 'a PacketBatch', batch)
      }
      const all: Array<Promise<boolean>> = []
      const fields = Array.from({ length: batch.length }, (_, i) =>
        packetFields(batch.key(i), batch.bytes(i), batch.overlapped(i), batch.data(i), `batch[${i}].`),
      )
      const group = { refused: false }
      for (const f of fields) all.push(new Promise<boolean>((resolve, reject) => this.#queue({ fields: f, group, resolve, reject })))
      return Promise.all(all).then((ok) => {
        const first = ok.indexOf(false)
        return first < 0 ? ok.length : first
      })
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Waits for posts in flight, then disconnects. Later posts reject with `RemoteClosedError`. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    while (this.#flushing) await this.#flushing
    await disconnect(this.#redis)
  }

  #queue(o: Outgoing): void {
    this.#outbox.push(o)
    this.#flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.#flush())
  }

  async #flush(): Promise<void> {
    while (this.#outbox.length > 0) {
      const batch = this.#outbox.splice(0, BATCH).filter((o) => {
        if (o.group?.refused) o.resolve(false)
        return !o.group?.refused
      })
      if (batch.length === 0) continue
      const args: Array<string | number | Buffer> = [this.#keys.group, this.#capacity, PACKET_FIELDS]
      for (const o of batch) args.push(...o.fields)
      try {
        const ids = await this.#redis.iocpPost(this.#keys.stream, ...args)
        this.#posted += ids.length
        batch.forEach((o, i) => {
          if (i >= ids.length && o.group) o.group.refused = true
          o.resolve(i < ids.length)
        })
      } catch (error) {
        for (const o of batch) o.reject(error)
      }
    }
    this.#flushing = undefined
  }
}
