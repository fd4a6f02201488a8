/**
 * One consumer of a Redis Streams consumer group, shared by both forwarders: the machine's side
 * of the port's contract.
 *
 * - **get** = `XREADGROUP ... COUNT room BLOCK ms`, on a connection of its own (a blocked
 *   connection serves nobody else), asking only for as many entries as the local side has room
 *   for (`room()`), so a slow machine does not hoard work.
 * - **held packets** = the group's pending entries list. The entries this consumer holds are
 *   renewed every `claimIdleMs / 3` (the renew script: XCLAIM to itself, JUSTID, only while still
 *   its own), so a live consumer's entries never look idle, however long its tasks run.
 * - **recovering a dead thread's packets** = `XAUTOCLAIM` of entries idle for `claimIdleMs`:
 *   only a consumer that stopped renewing them (it died, or lost Redis for that long) has such
 *   entries.
 * - Every entry is delivered with its delivery count; the caller decides when one has had its
 *   attempts (and dead-letters it).
 *
 * - Consumers that hold nothing and have been idle for 20 × `claimIdleMs` (processes that ended)
 *   are deleted from the group now and then, and this one deletes itself when it ends holding
 *   nothing, so the group does not collect the name of every process that ever ran.
 *
 * Settling (XACK) is the caller's: it runs the settle script, then calls {@link GroupConsumer.release}.
 */
import type { Redis } from 'ioredis'
import type { ScriptedRedis } from './scripts.js'
import { settledWithin } from './wait.js'

/** One stream entry as delivered: its id, its fields (binary), and its delivery count. */
export interface Entry {
  readonly id: string
  readonly fields: Map<string, Buffer>
  /** Times the group delivered it (1 on the first read; XAUTOCLAIM adds one). */
  readonly deliveries: number
}

/** What a {@link GroupConsumer} needs. */
export interface GroupConsumerOptions {
  /** The connection for every non-blocking command (with the scripts defined). */
  readonly cmd: ScriptedRedis
  /** A connection used only for the blocking XREADGROUP. */
  readonly blocking: Redis
  readonly stream: string
  readonly group: string
  readonly consumer: string
  readonly claimIdleMs: number
  readonly blockMs: number
  /** How many more entries the local side takes now. */
  readonly room: () => number
  /** Hands entries over; the consumer holds them until {@link GroupConsumer.release}. */
  readonly deliver: (entries: Entry[]) => void
  /** A transient failure (Redis gone, ...): reported, then retried. */
  readonly onError: (error: unknown) => void
}

function fieldsOf(flat: Buffer[]): Map<string, Buffer> {
  const m = new Map<string, Buffer>()
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i]!.toString(), flat[i + 1]!)
  return m
}

type RawEntry = [Buffer, Buffer[] | null]

/** Reads and holds one consumer's share of a group. See the file comment. */
export class GroupConsumer {
  readonly #o: GroupConsumerOptions
  /** Entries delivered and not yet released: the pending entries this consumer renews. */
  readonly #held = new Set<string>()
  #stopped = false
  #wake: (() => void) | undefined
  #blockingId: number | undefined
  #reading: Promise<void> | undefined
  #claimTimer: NodeJS.Timeout | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #claiming = false
  #cursor = '0-0'
  #claims = 0
  /** Entries taken over from other consumers by XAUTOCLAIM. */
  reclaimed = 0

  constructor(options: GroupConsumerOptions) {
    this.#o = options
  }

  /** How many entries this consumer holds. */
  get held(): number {
    return this.#held.size
  }

  /** Creates the group if needed (and the stream), then starts reading, reclaiming and renewing. */
  async start(): Promise<void> {
    await this.#ensureGroup()
    this.#blockingId = Number(await this.#o.blocking.client('ID'))
    // A reconnected blocking connection has a new id: CLIENT UNBLOCK at stop needs the current one.
    this.#o.blocking.on('ready', () => {
      this.#o.blocking.client('ID').then(
        (id) => (this.#blockingId = Number(id)),
        () => {},
      )
    })
    this.#reading = this.#readLoop()
    const claimEvery = Math.max(10, Math.floor(this.#o.claimIdleMs / 2))
    this.#claimTimer = setInterval(() => void this.#claim(), claimEvery)
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.#o.claimIdleMs / 3)))
    void this.#claim()
  }

  /** The local side finished these entries (after settling them): frees their room. */
  release(ids: Iterable<string>): void {
    for (const id of ids) this.#held.delete(id)
    this.poke()
  }

  /** Room may have grown: wakes the read loop if it waits for room. */
  poke(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** Stops reading and reclaiming (entries still held stay pending until released). */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#claimTimer)
    this.poke()
    if (this.#blockingId !== undefined) {
      // Ends the blocked XREADGROUP now (it returns nil) instead of after blockMs.
      await this.#o.cmd.client('UNBLOCK', this.#blockingId).catch(() => {})
    }
    // After a reconnection the id may be stale: then the blocked read is cut by disconnecting
    // (entries it was being sent stay pending for this consumer, and are reclaimed by another).
    await settledWithin(this.#reading!, 500)
    this.#o.blocking.disconnect()
    await this.#reading
  }

  /**
   * Stops renewing held entries (after the last release), and leaves the group if this consumer
   * holds nothing there (checked on the server).
   */
  async end(): Promise<void> {
    clearInterval(this.#renewTimer)
    const { cmd, stream, group, consumer } = this.#o
    await cmd.iocpReap(stream, group, Number.MAX_SAFE_INTEGER, consumer).catch(() => {})
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#o.cmd.xgroup('CREATE', this.#o.stream, this.#o.group, '0', 'MKSTREAM')
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('BUSYGROUP')) throw error
    }
  }

  async #readLoop(): Promise<void> {
    const { blocking, stream, group, consumer, blockMs } = this.#o
    while (!this.#stopped) {
      const room = this.#o.room()
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve))
        continue
      }
      let res: unknown
      try {
        res = await blocking.xreadgroupBuffer('GROUP', group, consumer, 'COUNT', room, 'BLOCK', blockMs, 'STREAMS', stream, '>')
      } catch (error) {
        if (this.#stopped) break
        // The group is gone (a Redis that restarted without its data): make it again.
        if (String((error as Error)?.message).startsWith('NOGROUP')) await this.#ensureGroup().catch(() => {})
        else this.#o.onError(error)
        await new Promise((r) => setTimeout(r, 100))
        continue
      }
      if (!res) continue
      const [[, raw]] = res as [[Buffer, RawEntry[]]]
      this.#take(raw, () => 1)
    }
  }

  #take(raw: RawEntry[], deliveries: (id: string) => number): void {
    const out: Entry[] = []
    for (const [idBuf, flat] of raw) {
      const id = idBuf.toString()
      // A null body: the entry was deleted while pending; nothing to run.
      if (!flat) continue
      this.#held.add(id)
      out.push({ id, fields: fieldsOf(flat), deliveries: deliveries(id) })
    }
    if (out.length > 0) this.#o.deliver(out)
  }

  /** XAUTOCLAIM: takes over entries idle for claimIdleMs (their consumer stopped renewing them). */
  async #claim(): Promise<void> {
    if (this.#claiming || this.#stopped) return
    this.#claiming = true
    const { cmd, stream, group, consumer, claimIdleMs } = this.#o
    try {
      for (;;) {
        const room = this.#o.room()
        if (room <= 0 || this.#stopped) break
        const res = (await cmd.callBuffer('XAUTOCLAIM', stream, group, consumer, claimIdleMs, this.#cursor, 'COUNT', room)) as unknown as [
          Buffer,
          RawEntry[],
        ]
        this.#cursor = res[0].toString()
        const raw = res[1].filter((e) => e[1] !== null)
        if (raw.length > 0) {
          // The delivery count of each (XAUTOCLAIM counted this delivery already).
          const pipe = cmd.pipeline()
          for (const [id] of raw) pipe.xpending(stream, group, id.toString(), id.toString(), 1)
          const counts = new Map<string, number>()
          for (const [err, r] of (await pipe.exec()) ?? []) {
            const row = !err && Array.isArray(r) ? (r[0] as [string, string, number, number] | undefined) : undefined
            if (row) counts.set(String(row[0]), Number(row[3]))
          }
          this.reclaimed += raw.length
          this.#take(raw, (id) => counts.get(id) ?? 2)
        }
        if (this.#cursor === '0-0') break
      }
      if (++this.#claims % 20 === 0) await cmd.iocpReap(stream, group, 20 * claimIdleMs, '')
    } catch (error) {
      if (!this.#stopped) this.#o.onError(error)
    } finally {
      this.#claiming = false
    }
  }

  /** Resets the idle time of every held entry that is still this consumer's. */
  async #renew(): Promise<void> {
    if (this.#held.size === 0) return
    const { cmd, stream, group, consumer } = this.#o
    const ids = [...this.#held]
    try {
      for (let i = 0; i < ids.length; i += 1000) {
        await cmd.iocpRenew(stream, group, consumer, ...ids.slice(i, i + 1000))
      }
    } catch (error) {
      this.#o.onError(error)
    }
  }
}
