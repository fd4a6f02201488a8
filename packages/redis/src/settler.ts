/**
 * Batches the outcomes of entries into settle-script calls (see scripts.ts): every outcome
 * decided in one turn of the event loop goes to Redis in one atomic call per 512 entries. An
 * outcome is kept, and retried, until Redis took it: it is never dropped, so an entry is
 * acknowledged exactly when its outcome (reply, requeue, dead letter) is written.
 */
import type { SettleCommands, SettleEntry, SettleReply, ScriptedRedis } from './scripts.js'
import { settleArgs } from './scripts.js'
import { batchLength } from './batch.js'

const CHUNK = 512
/** The most reply-frame bytes in one settle call: see remote-pool.ts' BATCH_BYTES. */
const CHUNK_BYTES = 16 * 1024 * 1024
const NONE: SettleCommands = []

/** Settles entries of one consumer, in batches. */
export class Settler {
  readonly #redis: ScriptedRedis
  readonly #stream: string
  readonly #group: string
  readonly #consumer: string
  readonly #released: (ids: string[]) => void
  readonly #onError: (error: unknown) => void
  #queue: SettleEntry[] = []
  #running: Promise<void> | undefined
  /** Entries another consumer had taken over when this one settled them: their outcome was dropped. */
  skipped = 0

  constructor(
    redis: ScriptedRedis,
    stream: string,
    group: string,
    consumer: string,
    released: (ids: string[]) => void,
    onError: (error: unknown) => void,
  ) {
    this.#redis = redis
    this.#stream = stream
    this.#group = group
    this.#consumer = consumer
    this.#released = released
    this.#onError = onError
  }

  /** Queues the outcome of entry `id`: XACK, its reply frame and `commands`, atomically. */
  settle(id: string, commands: SettleCommands = NONE, reply?: SettleReply): void {
    this.#queue.push({ id, reply, commands })
    this.#running ??= new Promise<void>((r) => setImmediate(r)).then(() => this.#drain())
  }

  /** Resolves when every queued outcome is in Redis. */
  async flushed(): Promise<void> {
    while (this.#running) await this.#running
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, batchLength(this.#queue, CHUNK, CHUNK_BYTES, (e) => e.reply?.frame.length ?? 0))
      const args = settleArgs(this.#group, this.#consumer, batch)
      for (let attempt = 0; ; attempt++) {
        try {
          this.skipped += await this.#redis.iocpSettle(this.#stream, ...args)
          break
        } catch (error) {
          // The group is gone (a Redis that came back without its data): so are these entries.
          if (String((error as Error)?.message).includes('NOGROUP')) break
          // Redis away or refusing: the outcomes stay ours until it takes them.
          this.#onError(error)
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * (attempt + 1))))
        }
      }
      this.#released(batch.map((b) => b.id))
    }
    this.#running = undefined
  }
}

