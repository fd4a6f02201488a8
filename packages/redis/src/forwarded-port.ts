/**
 * `ForwardedPort`: how a local thread reads the packets a {@link Forwarder} feeds to its
 * `CompletionPort`, with the port's own rule for what it holds: a thread holds the packets of its
 * last get until its next get (docs/api.md). When it comes back for more, this wrapper first marks
 * the slots of what it held as done in the forwarder's shared memory and wakes the forwarder
 * (`Atomics.notify`), which then acknowledges those entries in Redis (held → XACK).
 *
 * One `ForwardedPort` per thread (the held record is the thread's). Blocking, FIFO, LIFO waking
 * and the concurrency limit are the local port's: this wrapper only adds the bookkeeping.
 */
import { CompletionPort, type GetAsyncOptions, type Packet, type PortHandle } from '@iocp/core'
import { invalidType } from './errors.js'
import { unwrap } from './packet-codec.js'

/** What a thread needs to read a forwarder's port: structured-clonable (`workerData`, `postMessage`). */
export interface ForwardedHandle {
  /** The local port's handle. */
  readonly port: PortHandle
  /** The forwarder's slot states. */
  readonly slots: SharedArrayBuffer
}

/** Slot states in the shared memory (`Int32Array`, index {@link SLOT_BASE} + slot). */
export const SLOT_FREE = 0
export const SLOT_HELD = 1
export const SLOT_DONE = 2
export const SLOT_ACKING = 3
/** Index of the release counter that threads bump and notify. */
export const RELEASES = 0
/** Index of slot 0. */
export const SLOT_BASE = 2

/** A thread's reader of a forwarder's port. See the file comment. */
export class ForwardedPort {
  /** The local port (for `blocking()`, `stats()`...). Read packets through this wrapper, not it. */
  readonly port: CompletionPort
  readonly #state: Int32Array
  #held: number[] = []

  private constructor(port: CompletionPort, state: Int32Array) {
    this.port = port
    this.#state = state
  }

  /** Opens a forwarder's port in this thread from its {@link Forwarder.handle}. */
  static open(handle: ForwardedHandle): ForwardedPort {
    if (handle === null || typeof handle !== 'object' || !(handle.slots instanceof SharedArrayBuffer)) {
      throw invalidType('handle', "a forwarder's handle ({ port, slots })", handle)
    }
    return new ForwardedPort(CompletionPort.fromHandle(handle.port), new Int32Array(handle.slots))
  }

  /** As `CompletionPort.get`: first gives back what this thread held. */
  get(timeoutMs?: number): Packet | null {
    this.release()
    const p = this.port.get(timeoutMs)
    if (p === null) return null
    this.#held.push(Number(p.overlapped))
    return unwrap(p)
  }

  /** As `CompletionPort.getMany`: first gives back what this thread held. */
  getMany(max: number, timeoutMs?: number): Packet[] {
    this.release()
    const got = this.port.getMany(max, timeoutMs)
    for (const p of got) this.#held.push(Number(p.overlapped))
    return got.map(unwrap)
  }

  /** As `CompletionPort.getAsync`: first gives back what this thread held. */
  async getAsync(options?: GetAsyncOptions): Promise<Packet | null> {
    this.release()
    const p = await this.port.getAsync(options)
    if (p === null) return null
    this.#held.push(Number(p.overlapped))
    return unwrap(p)
  }

  /**
   * Gives back what this thread holds without taking more: call it when the thread is done with
   * the port (before it exits), as its next get would.
   */
  release(): void {
    if (this.#held.length === 0) return
    for (const slot of this.#held) Atomics.store(this.#state, SLOT_BASE + slot, SLOT_DONE)
    this.#held = []
    Atomics.add(this.#state, RELEASES, 1)
    Atomics.notify(this.#state, RELEASES)
  }
}
