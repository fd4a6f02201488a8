/**
 * What a task function (and a raw-packet handler) is given besides its payload: the second
 * argument, `ctx`. It is how a task sees its cancellation, tells the pool's port that it is
 * about to block, and posts raw packets back to the pool.
 *
 * Worker side: made by pool/worker/loop.ts, one per task.
 */
import type { CompletionPort } from '../../port/completion-port.js'
import { PoolErrors } from '../shared/errors.js'
import { ABORTED, ASYNC, DONE } from '../shared/memory.js'
import { waitAsync } from '../../shared.js'
import { TASK_BASE } from '../shared/codec.js'
import { poolIo, type PoolIo } from './pool-io.js'

/**
 * The second argument of a raw-packet handler (`export function onPacket(packet, ctx)`), and
 * the base of {@link TaskContext}.
 */
export interface PacketContext {
  /**
   * Runs `fn` while this worker does not count against the pool's `concurrency`, so that the
   * port may start another task meanwhile (IOCP: a running thread that blocks on something
   * else). Wrap every wait that is not the pool's own: `Atomics.wait`, synchronous I/O, a
   * `get()` on another port, an `await` of slow I/O. An async `fn` keeps the worker out of the
   * count until its promise settles. See {@link CompletionPort.blocking}.
   */
  blocking<T>(fn: () => PromiseLike<T>): Promise<T>
  blocking<T>(fn: () => T): T
  /**
   * Posts a raw packet to the pool's port (handled by some worker's `onPacket`): the same as
   * {@link PortPool.post}, from inside the pool. Number keys must be below 2^52.
   */
  post(key: number | bigint, bytes?: number, overlapped?: number | bigint, data?: Uint8Array): void
  /** The `threadId` of the worker running this call. */
  readonly threadId: number
  /**
   * Overlapped file I/O on the pool's port (docs/io.md): completions come back as raw packets to
   * some worker's `onPacket`. Keys must be below 2^52.
   */
  readonly io: PoolIo
}

/**
 * The second argument of a task function: `export default function (payload, ctx) { ... }`.
 * Task functions written for Piscina take one argument and keep working.
 */
export interface TaskContext extends PacketContext {
  /**
   * Aborts when the `signal` given to `run()` aborts (its promise has then already rejected
   * with `AbortError`; what the task returns is ignored). The `'abort'` event is delivered on
   * the worker's event loop, so an async task sees it while it awaits; a synchronous task never
   * yields to the event loop, so it should poll {@link TaskContext.aborted} (or read
   * `ctx.signal.aborted`, which is brought up to date each time `ctx.signal` is read).
   */
  readonly signal: AbortSignal
  /** Whether the task was aborted: read live from shared memory, so a synchronous task can poll it. */
  readonly aborted: boolean
  /** Throws an `AbortError` (a `DOMException`) if the task was aborted. */
  throwIfAborted(): void
  /** The name of the task being run (`'default'` unless `run()` named another). */
  readonly name: string
}

function abortReason(): DOMException {
  return new DOMException('The task was aborted by its signal in the main thread', 'AbortError')
}

/**
 * What a context needs of the pool's task port: the port itself in a loop, or, for a boot task
 * (boot-task.ts), a stand-in that opens the port when the task first uses it.
 */
export type ScopePort = Pick<CompletionPort, 'blocking' | 'post'> & PoolIo

/** Posts a raw packet to `port`, refusing the pool's reserved number keys. */
export function postRaw(
  port: Pick<CompletionPort, 'post'>,
  key: number | bigint,
  bytes: number | undefined,
  overlapped: number | bigint | undefined,
  data: Uint8Array | undefined,
): void {
  if (typeof key === 'number' && key >= TASK_BASE) throw PoolErrors.reservedKey(key)
  port.post(key, bytes, overlapped, data)
}

/** The {@link PacketContext} of one raw packet. */
export class PacketScope implements PacketContext {
  readonly #port: ScopePort
  readonly threadId: number

  constructor(port: ScopePort, threadId: number) {
    this.#port = port
    this.threadId = threadId
  }

  blocking<T>(fn: () => PromiseLike<T>): Promise<T>
  blocking<T>(fn: () => T): T
  blocking(fn: () => unknown): unknown {
    return this.#port.blocking(fn)
  }

  post(key: number | bigint, bytes?: number, overlapped?: number | bigint, data?: Uint8Array): void {
    postRaw(this.#port, key, bytes, overlapped, data)
  }

  get io(): PoolIo {
    return poolIo(this.#port)
  }
}

/**
 * The {@link TaskContext} of one task. Its abort state is `state[slot]` in shared memory
 * (see pool/shared/memory.ts) while the task runs, and frozen when it ends (the slot then belongs to
 * another task).
 */
export class TaskScope extends PacketScope implements TaskContext {
  readonly name: string
  readonly #state: Int32Array
  readonly #slot: number
  #controller: AbortController | undefined
  /** The task returned a promise that has not settled. */
  #async = false
  /** An Atomics.waitAsync on the slot is pending. */
  #watching = false
  #ended = false
  #abortedAtEnd = false

  constructor(port: ScopePort, threadId: number, state: Int32Array, slot: number, name: string) {
    super(port, threadId)
    this.#state = state
    this.#slot = slot
    this.name = name
  }

  get aborted(): boolean {
    if (this.#ended) return this.#abortedAtEnd
    return Atomics.load(this.#state, this.#slot) === ABORTED
  }

  get signal(): AbortSignal {
    let controller = this.#controller
    if (controller === undefined) {
      controller = this.#controller = new AbortController()
      if (this.#async) this.#watch()
    }
    if (!controller.signal.aborted && this.aborted) controller.abort(abortReason())
    return controller.signal
  }

  throwIfAborted(): void {
    if (this.aborted) throw abortReason()
  }

  /**
   * The task returned a promise; `running` is whether the slot moved RUNNING -> ASYNC (false:
   * the main thread aborted it first). From now on an abort is delivered to the signal.
   */
  enterAsync(running: boolean): void {
    this.#async = true
    if (!running) {
      this.#controller?.abort(abortReason())
      return
    }
    if (this.#controller !== undefined) this.#watch()
  }

  /** The task ended: freeze the abort state, and end the wait on the slot if there is one. */
  end(): void {
    if (this.#ended) return
    this.#abortedAtEnd = this.aborted
    this.#ended = true
    if (this.#async) {
      Atomics.store(this.#state, this.#slot, DONE)
      if (this.#watching) Atomics.notify(this.#state, this.#slot)
    }
  }

  /** Waits (without blocking) for the main thread to change the slot from ASYNC. */
  #watch(): void {
    if (this.#watching || this.#ended) return
    const wait = waitAsync(this.#state, this.#slot, ASYNC)
    if (!wait.async) {
      this.#onWake()
      return
    }
    this.#watching = true
    void wait.value.then(() => {
      this.#watching = false
      this.#onWake()
    })
  }

  #onWake(): void {
    if (this.#ended) return
    if (Atomics.load(this.#state, this.#slot) === ABORTED) this.#controller?.abort(abortReason())
  }
}
