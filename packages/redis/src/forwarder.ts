/**
 * `Forwarder`: runs on each machine and feeds a local `CompletionPort` from a remote port's
 * consumer group (see {@link RemotePort}).
 *
 * - It holds at most `capacity` packets (its slots): it asks Redis only for as many as it has
 *   free slots, so a slow machine does not hoard work.
 * - Each packet is posted to the local port with its slot as `overlapped` (the original value
 *   rides with the payload; {@link ForwardedPort} restores it). When the thread that took it
 *   comes back for its next get, the slot is marked done in shared memory and the forwarder
 *   acknowledges the entry (XACK), then reuses the slot.
 * - Entries of a consumer that died are reclaimed with XAUTOCLAIM after `claimIdleMs`; an entry
 *   delivered more than `maxAttempts` times goes to the dead-letter stream instead.
 * - On the local side, packets obey the local port's FIFO, LIFO and concurrency rules: the
 *   forwarder only posts to it.
 */
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { CompletionPort } from '@iocp/core'
import type { Redis } from 'ioredis'
import { connect, disconnect, type RedisTarget } from './connection.js'
import { intOption, invalidType, stringOption } from './errors.js'
import { RELEASES, SLOT_ACKING, SLOT_BASE, SLOT_DONE, SLOT_FREE, SLOT_HELD, type ForwardedHandle } from './forwarded-port.js'
import { GroupConsumer, type Entry } from './group-consumer.js'
import { keysOf, type Keys } from './keys.js'
import { entryPacket, localPayload, type EntryPacket } from './packet-codec.js'
import { withScripts, type ScriptedRedis } from './scripts.js'
import { Settler } from './settler.js'

/** `Atomics.waitAsync` (Node 16+; typed in lib es2024, newer than this package's target). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number): { async: false; value: string } | { async: true; value: Promise<string> }
}).waitAsync

/** Options of {@link Forwarder.start}. */
export interface ForwarderOptions {
  /** Where Redis is. See {@link RedisTarget}. */
  redis: RedisTarget
  /** The local port to feed. The forwarder never closes it. */
  port: CompletionPort
  /** The remote port's name, as given to {@link RemotePort.connect}. @default 'iocp-port' */
  name?: string
  /** This consumer's name in the group, unique per process. @default `${hostname}:${pid}:${random}` */
  consumer?: string
  /** The most packets this machine holds at once (queued locally or held by a thread). @default 256 */
  capacity?: number
  /** ms a held packet may go unrenewed before another forwarder reclaims it. @default 30000 */
  claimIdleMs?: number
  /** Deliveries of one packet (to forwarders that died with it) before it is dead-lettered. @default 3 */
  maxAttempts?: number
  /** ms to wait for the first connection. @default 5000 */
  connectTimeoutMs?: number
}

/** Counters of a {@link Forwarder}. */
export interface ForwarderStats {
  /** Packets taken from the group and posted to the local port. */
  readonly forwarded: number
  /** Packets acknowledged (their thread came back for more). */
  readonly acknowledged: number
  /** Packets taken over from a forwarder that stopped renewing them. */
  readonly reclaimed: number
  /** Packets sent to the dead-letter stream. */
  readonly deadLettered: number
  /** Packets held now (posted locally, not yet released by their thread). */
  readonly held: number
}

/** A machine's side of a {@link RemotePort}. See the file comment. */
export class Forwarder extends EventEmitter {
  readonly #cmd: ScriptedRedis
  readonly #blocking: Redis
  readonly #keys: Keys
  readonly #port: CompletionPort
  readonly #state: Int32Array
  readonly #slots: SharedArrayBuffer
  readonly #maxAttempts: number
  readonly #free: number[] = []
  readonly #entries: Array<{ id: string; packet: EntryPacket } | undefined>
  readonly #slotOf = new Map<string, number>()
  readonly #consumer: GroupConsumer
  readonly #settler: Settler
  #closed = false
  #closing: Promise<void> | undefined
  #watching: Promise<void> = Promise.resolve()
  #s = { forwarded: 0, acknowledged: 0, deadLettered: 0 }
  #drained: (() => void) | undefined

  private constructor(cmd: Redis, blocking: Redis, o: Required<Omit<ForwarderOptions, 'redis' | 'connectTimeoutMs'>>) {
    super()
    this.#cmd = withScripts(cmd)
    this.#blocking = blocking
    this.#keys = keysOf(o.name)
    this.#port = o.port
    this.#maxAttempts = o.maxAttempts
    this.#slots = new SharedArrayBuffer(4 * (SLOT_BASE + o.capacity))
    this.#state = new Int32Array(this.#slots)
    this.#entries = new Array(o.capacity)
    for (let s = o.capacity - 1; s >= 0; s--) this.#free.push(s)
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
      room: () => (this.#closed ? 0 : this.#free.length - (this.#consumer.held - this.#slotOf.size)),
      deliver: (entries) => this.#deliver(entries),
      onError,
    })
    this.#settler = new Settler(this.#cmd, this.#keys.stream, this.#keys.group, o.consumer, (ids) => this.#released(ids), onError)
  }

  /**
   * Connects (two connections: commands and the blocking read), joins the group and starts
   * feeding `options.port`. Rejects with a `TypeError` / `RangeError` naming a bad option, or
   * `RedisUnavailableError`.
   */
  static async start(options: ForwarderOptions): Promise<Forwarder> {
    if (options === null || typeof options !== 'object') throw invalidType('options', 'an object with `redis` and `port`', options)
    if (!(options.port instanceof CompletionPort)) throw invalidType('options.port', 'a CompletionPort', options.port)
    const name = stringOption('options.name', options.name, 'iocp-port')
    const consumer = stringOption('options.consumer', options.consumer, `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`)
    const capacity = intOption('options.capacity', options.capacity, 256, 1, 65_536)
    const claimIdleMs = intOption('options.claimIdleMs', options.claimIdleMs, 30_000, 30)
    const maxAttempts = intOption('options.maxAttempts', options.maxAttempts, 3, 1, 1000)
    const timeout = intOption('options.connectTimeoutMs', options.connectTimeoutMs, 5000, 1)
    const cmd = await connect(options.redis, 'iocp-forwarder-cmd', 'options.redis', timeout)
    let blocking: Redis
    try {
      blocking = await connect(options.redis, 'iocp-forwarder-read', 'options.redis', timeout)
    } catch (error) {
      cmd.disconnect()
      throw error
    }
    const f = new Forwarder(cmd, blocking, { port: options.port, name, consumer, capacity, claimIdleMs, maxAttempts })
    await f.#consumer.start()
    f.#watching = f.#watch()
    return f
  }

  /** What a thread passes to {@link ForwardedPort.open} to read this forwarder's packets. */
  get handle(): ForwardedHandle {
    return { port: this.#port.handle, slots: this.#slots }
  }

  /** Counters: see {@link ForwarderStats}. */
  stats(): ForwarderStats {
    return { ...this.#s, reclaimed: this.#consumer.reclaimed, held: this.#slotOf.size }
  }

  /**
   * Takes back the packets a local thread that exited was holding (`port.recoverHeld`) and
   * posts them to the local port again, payloads included (the forwarder kept them). Returns how
   * many. The same packets stay unacknowledged in Redis until their new thread releases them.
   * The local port must keep held records for exited threads (`trackHeld: true` where
   * `CompletionPort` has that option).
   */
  recoverHeld(threadId: number): number {
    const packets = this.#port.recoverHeld(threadId)
    for (const p of packets) {
      const slot = Number(p.overlapped)
      const e = this.#entries[slot]
      if (e) this.#port.post(e.packet.key, e.packet.bytes, slot, localPayload(e.packet))
    }
    return packets.length
  }

  /**
   * Stops taking packets, waits until the local threads have released every packet this
   * forwarder posted (they keep getting, or call `release()`) and their acknowledgements are in
   * Redis, then disconnects. The local port stays open (it is the caller's).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /**
   * Stops at once: what the local threads released so far is acknowledged; packets still held
   * stay pending in Redis, unrenewed, and another forwarder reclaims them after `claimIdleMs`
   * (they may then run twice: at least once). For a local port that is closed or whose threads
   * are gone.
   */
  destroy(): Promise<void> {
    this.#destroyed = true
    const d = this.#drained
    this.#drained = undefined
    d?.()
    return this.close()
  }

  #destroyed = false

  async #close(): Promise<void> {
    this.#closed = true
    await this.#consumer.stop()
    if (this.#slotOf.size > 0 && !this.#destroyed) await new Promise<void>((resolve) => (this.#drained = resolve))
    await this.#settler.flushed()
    await this.#consumer.end()
    // wakes the watcher so that it sees #closed
    Atomics.add(this.#state, RELEASES, 1)
    Atomics.notify(this.#state, RELEASES)
    await this.#watching
    await Promise.all([disconnect(this.#cmd), disconnect(this.#blocking)])
  }

  #deliver(entries: Entry[]): void {
    for (const entry of entries) {
      const packet = entryPacket(entry.fields)
      if (entry.deliveries > this.#maxAttempts) {
        // Delivered once too often: the forwarders it went to died with it.
        this.#s.deadLettered++
        const fields: Array<string | Buffer> = []
        for (const [k, v] of entry.fields) fields.push(k, v)
        this.#settler.settle(entry.id, [['XADD', this.#keys.dead, '*', ...fields, 'id', entry.id, 'attempts', String(entry.deliveries - 1)]])
        continue
      }
      const slot = this.#free.pop()!
      this.#entries[slot] = { id: entry.id, packet }
      this.#slotOf.set(entry.id, slot)
      Atomics.store(this.#state, SLOT_BASE + slot, SLOT_HELD)
      try {
        this.#port.post(packet.key, packet.bytes, slot, localPayload(packet))
        this.#s.forwarded++
      } catch (error) {
        // The local port refused it (closed, or full): leave the entry pending, unrenewed, for
        // another forwarder to reclaim.
        Atomics.store(this.#state, SLOT_BASE + slot, SLOT_FREE)
        this.#entries[slot] = undefined
        this.#slotOf.delete(entry.id)
        this.#free.push(slot)
        this.#consumer.release([entry.id])
        if (this.listenerCount('error') > 0) this.emit('error', error)
      }
    }
  }

  /** Waits for threads to release slots; acknowledges what they released. */
  async #watch(): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.#state, RELEASES)
      for (let s = 0; s < this.#entries.length; s++) {
        if (Atomics.load(this.#state, SLOT_BASE + s) === SLOT_DONE) {
          Atomics.store(this.#state, SLOT_BASE + s, SLOT_ACKING)
          this.#settler.settle(this.#entries[s]!.id)
        }
      }
      if (this.#closed && (this.#slotOf.size === 0 || this.#destroyed)) return
      const w = waitAsync(this.#state, RELEASES, seen)
      if (w.async) await w.value
    }
  }

  #released(ids: string[]): void {
    for (const id of ids) {
      const slot = this.#slotOf.get(id)
      if (slot === undefined) continue
      this.#slotOf.delete(id)
      this.#entries[slot] = undefined
      Atomics.store(this.#state, SLOT_BASE + slot, SLOT_FREE)
      this.#free.push(slot)
      this.#s.acknowledged++
    }
    this.#consumer.release(ids)
    if (this.#slotOf.size === 0 && this.#drained) {
      const d = this.#drained
      this.#drained = undefined
      d()
    }
  }
}

