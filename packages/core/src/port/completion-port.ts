/**
 * `CompletionPort`: Windows' I/O completion port as a portable object shared by worker threads.
 * This file is the friendly layer: it validates every argument, applies defaults, turns the
 * addon's status codes into errors and decodes packets. The queue, the LIFO waiter stack and the
 * concurrency rule all live in native code (@iocp/native), reached only through `NativePort`.
 */
import { availableParallelism } from 'node:os'
import type { NativePort } from '@iocp/native'
import { fillBatch, fillBatchShared, isPacketBatch, postBatch, postBatchShared, type PacketBatch } from './batch.js'
import { Errors } from '../errors.js'
import { thenOf } from '../shared.js'
import { makeHandle, validateHandle, type PortHandle } from './handle.js'
import * as io from './io.js'
import { FLAG_HAS_DATA, PACKET_WORDS, W_FLAGS, packetsFromFlat, readPacket, type Packet } from './packet.js'
import { SLOW, SharedPort } from './shared-port.js'
import {
  CLOSED,
  FULL,
  OK,
  TERMINATING,
  TIMEOUT,
  ensureScratch,
  finishWaiter,
  registerWaiter,
  thread,
  type AsyncWaiter,
  type ThreadState,
} from './thread-state.js'
import {
  MAX_U32,
  isU32,
  isU53,
  toNativeTimeout,
  validateData,
  validateFunction,
  validateInteger,
  validateOptions,
  validateSignal,
  validateU32,
  validateU64,
} from '../validate.js'

/** Options of the {@link CompletionPort} constructor. */
export interface CompletionPortOptions {
  /**
   * The most threads the port lets run at once (IOCP's `NumberOfConcurrentThreads`): a waiter
   * is released only while fewer threads than this count as running on the port. `0` means
   * `os.availableParallelism()`.
   * @default 0
   */
  concurrency?: number
  /**
   * The most packets the queue holds; `post()` on a full port throws {@link PortFullError} and
   * posts nothing. `0` means unbounded.
   * @default 0
   */
  capacity?: number
  /**
   * How long, in microseconds, a blocking {@link CompletionPort.get} polls for a packet before
   * it puts its thread to sleep. A packet that comes within that time is taken without the
   * sleep and wake-up (a few microseconds each), which is what makes a round trip between two
   * threads fast. The waiter is in the LIFO stack all along, so which thread gets a packet does
   * not change; the cost is CPU burnt while idle, at most this long per wait. `0` sleeps at once.
   * Ignored on a machine with one CPU.
   * @default 20
   */
  spinMicroseconds?: number
  /**
   * Keep, for {@link CompletionPort.recoverHeld}, the packets that each thread held (took and
   * had not yet followed with another get) when it exited. A pool sets it to retry the tasks of
   * a worker that died; without it, nothing is kept for exited threads, so that a port used by
   * many short-lived threads does not accumulate records.
   * @default false
   */
  trackHeld?: boolean
  /**
   * Which backend runs this port's overlapped file I/O ({@link CompletionPort.associate},
   * docs/io.md): `'io_uring'`, `'thread-pool'` or `'auto'` (io_uring where the kernel allows it,
   * else the thread pool). Unset: the `IOCP_IO_BACKEND` environment variable, else `'auto'`.
   * @default 'auto'
   */
  io?: io.IoBackendName
}

/** Options of {@link CompletionPort.getAsync}. */
export interface GetAsyncOptions {
  /**
   * How long to wait, in milliseconds, before resolving `null`. `0` polls; fractions are
   * rounded up; values above 2^31-1 mean `Infinity`.
   * @default Infinity
   */
  timeoutMs?: number
  /**
   * Cancels the wait: the promise rejects with the signal's reason and no packet is lost.
   * @default undefined
   */
  signal?: AbortSignal
}

/** Live counters of a port, from {@link CompletionPort.stats}. A snapshot: it may be stale at once. */
export interface PortStats {
  /** Packets in the queue, not yet delivered. */
  queued: number
  /** Threads counted as running on the port (released by a get and not yet back in one). */
  running: number
  /** Waiters parked on the port: threads blocked in `get()` / `getMany()` plus pending `getAsync()` calls. */
  waiting: number
  /** Packets accepted by `post()` since the port was created. */
  posted: number
  /** Packets delivered to consumers since the port was created. */
  dequeued: number
  /** The concurrency limit. */
  concurrency: number
  /** The queue's capacity, `0` for unbounded. */
  capacity: number
  /** `'open'`, or `'shutdown'` once {@link CompletionPort.shutdown} was called. */
  state: 'open' | 'shutdown'
  /** Overlapped I/O: the port's backend and that backend's counters. */
  io: io.IoStats
}

/** Bounds of the constructor's options. */
const MAX_CONCURRENCY = 0x7fff_ffff
/** {@link CompletionPortOptions.spinMicroseconds}: the default and the largest value. */
const DEFAULT_SPIN_MICROSECONDS = 20
const MAX_SPIN_MICROSECONDS = 1_000_000
/** The keys {@link CompletionPortOptions} and {@link GetAsyncOptions} accept; any other is refused. */
const PORT_OPTIONS: ReadonlyArray<keyof CompletionPortOptions> = ['concurrency', 'capacity', 'spinMicroseconds', 'trackHeld', 'io']
const GET_ASYNC_OPTIONS: ReadonlyArray<keyof GetAsyncOptions> = ['timeoutMs', 'signal']
const STATE_SHUT_DOWN = 1
const STATE_CLOSED = 2

/** Set by {@link CompletionPort.fromHandle} just before it calls the constructor. */
let adopting: NativePort | undefined

/**
 * An I/O completion port: a FIFO queue of packets that any thread may post to, and that threads
 * drain with `get()`, with at most `concurrency` of them released to run at once. Waiting threads
 * are woken LIFO (the most recent waiter is warm), and a thread that calls `get()` again takes
 * the next packet itself, without a context switch.
 *
 * Share a port between threads with {@link CompletionPort.handle}: send the handle in
 * `workerData` or `postMessage`, and open it there with {@link CompletionPort.fromHandle}. A
 * `CompletionPort` object itself belongs to the thread that made it.
 *
 * @example
 * ```ts
 * const port = new CompletionPort({ concurrency: 2 })
 * port.post(1, 512, 7)
 * port.get()      // { key: 1, bytes: 512, overlapped: 7, data: undefined }
 * ```
 */
export class CompletionPort {
  readonly #native: NativePort
  readonly #thread: ThreadState
  /** The shared-memory fast path of post and get. */
  readonly #shared: SharedPort
  /** This wrapper's {@link CompletionPort.close} ran. */
  #closed = false
  /** `options.io`; the I/O calls' view of this port (io.ts), made on first use. */
  #ioPreference: io.IoBackendName | undefined
  #ioTarget: io.IoTarget | undefined

  /**
   * Creates a port (IOCP's `CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, N)`).
   *
   * @param options - see {@link CompletionPortOptions}.
   * @throws {TypeError} `options` is not an object or has an unknown key (a misspelling is
   *   refused, naming the key), or `options.concurrency` / `options.capacity` /
   *   `options.spinMicroseconds` is not a number.
   * @throws {RangeError} `options.concurrency` is not an integer in [0, 2^31-1], or
   *   `options.capacity` is not an integer in [0, 2^32-1].
   */
  constructor(options: CompletionPortOptions = {}) {
    const adopted = adopting
    adopting = undefined
    if (adopted !== undefined) {
      this.#thread = thread()
      this.#native = adopted
      this.#shared = new SharedPort(adopted, this.#thread.binding, this.#thread.consumer)
      return
    }
    const {
      concurrency = 0,
      capacity = 0,
      spinMicroseconds = DEFAULT_SPIN_MICROSECONDS,
      trackHeld = false,
      io: ioPreference,
    } = validateOptions<CompletionPortOptions>('options', options, 'new CompletionPort()', PORT_OPTIONS)
    this.#ioPreference = io.validateIoBackend('options.io', ioPreference)
    validateInteger(
      'options.concurrency',
      concurrency,
      0,
      MAX_CONCURRENCY,
      'an integer in [0, 2^31-1] (0 = os.availableParallelism())',
    )
    validateInteger('options.capacity', capacity, 0, MAX_U32, 'an integer in [0, 2^32-1] (0 = unbounded)')
    validateInteger('options.spinMicroseconds', spinMicroseconds, 0, MAX_SPIN_MICROSECONDS, 'an integer in [0, 1000000]')
    if (typeof trackHeld !== 'boolean') throw Errors.invalidType('options.trackHeld', 'a boolean', trackHeld)
    this.#thread = thread()
    this.#native = this.#thread.binding.createPort(
      concurrency === 0 ? availableParallelism() : concurrency,
      capacity,
      spinMicroseconds * 1000,
      trackHeld,
    )
    this.#shared = new SharedPort(this.#native, this.#thread.binding, this.#thread.consumer)
  }

  /**
   * Opens, in this thread, the port that `handle` names (the handle came from
   * {@link CompletionPort.handle}, possibly in another thread). Works on a port that is shut down
   * but not closed, so that its remaining packets can still be drained.
   *
   * @param handle - a {@link PortHandle}.
   * @returns a new wrapper of the same port.
   * @throws {TypeError} `handle` is not a well-formed {@link PortHandle}.
   * @throws {PortClosedError} the port was closed, or no longer exists.
   */
  static fromHandle(handle: PortHandle): CompletionPort {
    validateHandle(handle)
    const opened = thread().binding.openPort(handle.id, handle.pin)
    if (typeof opened === 'number') throw Errors.portClosed()
    adopting = opened
    try {
      return new CompletionPort()
    } finally {
      adopting = undefined
    }
  }

  /**
   * A structured-clonable {@link PortHandle} of this port, to send to another thread and open
   * there with {@link CompletionPort.fromHandle}.
   *
   * Each read makes a new handle whose `pin` keeps the port alive until a `fromHandle` of it
   * opens it, or the port is closed: read it once per handle you actually send.
   *
   * @throws {PortClosedError} the port is closed.
   */
  get handle(): PortHandle {
    this.#assertOpen()
    const [id, pin] = this.#native.handle()
    return makeHandle(id, pin)
  }

  /**
   * Queues a completion packet (IOCP's `PostQueuedCompletionStatus`). Never blocks; callable from
   * any thread. If a waiter may run under the concurrency rule, the packet goes straight to the
   * most recent waiter; otherwise it is queued. Packets are dequeued FIFO.
   *
   * All arguments are validated before anything is posted.
   *
   * @param key - the completion key: an integer in [0, 2^53-1], or a bigint in [0, 2^64-1]
   *   (delivered as the type it was posted in).
   * @param bytes - the "bytes transferred" value, an integer in [0, 2^32-1].
   * @param overlapped - an opaque value, same range and typing as `key`.
   * @param data - an optional payload, copied once now and handed to exactly one consumer
   *   (later changes to `data` are not seen).
   * @default bytes: `0`, overlapped: `0`, data: `undefined`
   * @throws {TypeError} an argument has the wrong type (message names it).
   * @throws {RangeError} a number is out of range or fractional (message names it).
   * @throws {PortClosedError} the port is closed or shut down.
   * @throws {PortFullError} the port has a capacity and the queue is full; nothing was posted.
   */
  post(key: number | bigint, bytes: number = 0, overlapped: number | bigint = 0, data?: Uint8Array): void {
    if (
      typeof key === 'number' &&
      typeof overlapped === 'number' &&
      data === undefined &&
      isU53(key) &&
      isU32(bytes) &&
      isU53(overlapped)
    ) {
      let status = this.#shared.post(key, bytes, overlapped)
      if (status === SLOW) status = this.#postNative(key, bytes, overlapped)
      if (status !== OK) throw this.#postError(status)
      return
    }
    this.#postChecked(key, bytes, overlapped, data)
  }

  /** post's native path: a waiter to wake, a ring to grow, a busy lock, a closed port. */
  #postNative(key: number, bytes: number, overlapped: number): number {
    this.#shared.refreshIfStale()
    return this.#native.post(key, bytes, overlapped)
  }

  /** post's general case (bigints, a payload, or bad arguments), out of line so post inlines. */
  #postChecked(key: unknown, bytes: unknown, overlapped: unknown, data: unknown): void {
    validateU64('key', key)
    validateU32('bytes', bytes)
    validateU64('overlapped', overlapped)
    validateData('data', data)
    const status = this.#native.postEx(key, bytes, overlapped, data)
    if (status !== OK) throw this.#postError(status)
  }

  /**
   * Posts every packet of `batch` (filled with {@link PacketBatch.push}, or by a fill, to forward
   * it), in order, under one lock: the batch form of {@link CompletionPort.post}, with no
   * allocation per call (a payload is copied once, as by `post`). Never blocks. The batch is
   * left as it is; {@link PacketBatch.clear} it to reuse it.
   *
   * @param batch - the packets to post.
   * @returns how many were posted: all of them, or, on a port with a `capacity` whose queue
   *   filled up, the first ones (the rest were not posted; post them again later).
   * @throws {TypeError} `batch` is not a {@link PacketBatch}.
   * @throws {PortClosedError} the port is closed or shut down; nothing was posted.
   */
  postMany(batch: PacketBatch): number {
    if (!isPacketBatch(batch)) throw Errors.invalidType('batch', 'a PacketBatch', batch)
    let result = postBatchShared(batch, this.#shared)
    if (result === SLOW) {
      this.#shared.refreshIfStale()
      result = postBatch(batch, this.#native)
    }
    if (result < 0) throw this.#postError(result)
    return result
  }

  /**
   * Takes one packet, blocking this thread until one is available, the timeout expires, or the
   * port closes (IOCP's `GetQueuedCompletionStatus`). Calling it again (or any get) ends this
   * thread's "running" count on the port; while it waits, the thread is in the port's LIFO
   * waiter stack.
   *
   * **Blocks the calling thread** unless `timeoutMs` is `0`. On the main thread, prefer
   * {@link CompletionPort.getAsync}.
   *
   * @param timeoutMs - milliseconds to wait: `Infinity` waits forever, `0` polls; fractions are
   *   rounded up; values above 2^31-1 mean `Infinity`.
   * @default `Infinity`
   * @returns the packet, or `null` on timeout, or `null` when the thread is being terminated
   *   (`worker.terminate()`: the packet it would have taken went back to the head of the queue).
   * @throws {TypeError} `timeoutMs` is not a number.
   * @throws {RangeError} `timeoutMs` is negative or NaN.
   * @throws {PortClosedError} the port is closed, or shut down and drained (also wakes a waiting
   *   call).
   */
  get(timeoutMs: number = Infinity): Packet | null {
    if (typeof timeoutMs === 'number' && timeoutMs >= 0) {
      const packet = this.#shared.get()
      if (packet !== undefined) return packet
    }
    return this.#getNative(timeoutMs)
  }

  /** get's native path: to sleep, to validate, or when the fast path does not apply. */
  #getNative(timeoutMs: number): Packet | null {
    const timeout = toNativeTimeout('timeoutMs', timeoutMs)
    this.#shared.refreshIfStale()
    const result = this.#native.get(timeout)
    if (result > 0) {
      const s = this.#thread
      const scratch = s.scratch
      return readPacket(
        scratch,
        s.scratch64,
        0,
        (scratch[W_FLAGS]! & FLAG_HAS_DATA) !== 0 ? s.binding.takeData(0) : undefined,
      )
    }
    if (result === TIMEOUT || result === TERMINATING) return null
    throw this.#statusError(result)
  }

  /**
   * Takes up to `max` packets in one call (IOCP's `GetQueuedCompletionStatusEx`): blocks like
   * {@link CompletionPort.get} until at least one is available, then returns every queued packet
   * up to `max`, in FIFO order. At most 65536 packets are returned per call, whatever `max` is.
   * For a form that allocates nothing per call, see {@link CompletionPort.getManyInto}.
   *
   * **Blocks the calling thread** unless `timeoutMs` is `0`.
   *
   * @param max - the most packets to return: a positive integer.
   * @param timeoutMs - as for {@link CompletionPort.get}.
   * @default timeoutMs: `Infinity`
   * @returns at least one packet, or `[]` on timeout (or when the thread is being terminated).
   * @throws {TypeError} `max` or `timeoutMs` is not a number.
   * @throws {RangeError} `max` is not a positive integer; `timeoutMs` is negative or NaN.
   * @throws {PortClosedError} the port is closed, or shut down and drained.
   */
  getMany(max: number, timeoutMs: number = Infinity): Packet[] {
    validateInteger('max', max, 1, Number.MAX_SAFE_INTEGER, 'a positive integer')
    const timeout = toNativeTimeout('timeoutMs', timeoutMs)
    const s = this.#thread
    ensureScratch(s, max)
    const count = this.#native.getMany(Math.min(max, s.capacity), timeout)
    if (count > 0) {
      const scratch = s.scratch
      const scratch64 = s.scratch64
      const packets = new Array<Packet>(count)
      for (let i = 0; i < count; i++) {
        const data =
          (scratch[i * PACKET_WORDS + W_FLAGS]! & FLAG_HAS_DATA) !== 0 ? s.binding.takeData(i) : undefined
        packets[i] = readPacket(scratch, scratch64, i, data)
      }
      return packets
    }
    if (count === TIMEOUT || count === TERMINATING) return []
    throw this.#statusError(count)
  }

  /**
   * Fills a caller-owned {@link PacketBatch} with up to `batch.capacity` packets, like
   * {@link CompletionPort.getMany} but with no allocation per call (a packet's payload, if any,
   * is its only allocation). Read the packets through the batch's accessors.
   *
   * **Blocks the calling thread** unless `timeoutMs` is `0`.
   *
   * @param batch - the batch to fill; its previous contents are replaced.
   * @param timeoutMs - as for {@link CompletionPort.get}.
   * @default timeoutMs: `Infinity`
   * @returns the number of packets now in the batch (also `batch.length`): at least 1, or 0 on
   *   timeout (or when the thread is being terminated).
   * @throws {TypeError} `batch` is not a {@link PacketBatch}; `timeoutMs` is not a number.
   * @throws {RangeError} `timeoutMs` is negative or NaN.
   * @throws {PortClosedError} the port is closed, or shut down and drained.
   */
  getManyInto(batch: PacketBatch, timeoutMs: number = Infinity): number {
    if (!isPacketBatch(batch)) throw Errors.invalidType('batch', 'a PacketBatch', batch)
    const timeout = toNativeTimeout('timeoutMs', timeoutMs)
    const taken = fillBatchShared(batch, this.#shared, this.#thread)
    if (taken !== SLOW) return taken
    this.#shared.refreshIfStale()
    const count = fillBatch(batch, this.#native, timeout, this.#thread)
    if (count >= 0) return count
    if (count === TERMINATING) return 0
    throw this.#statusError(count)
  }

  /**
   * Waits for one packet without blocking the thread: a promise settled from this thread's
   * event loop. No thread (of libuv's pool or otherwise) is parked per call. Async waiters share
   * the port's LIFO waiter stack with blocking ones, count in `stats().waiting`, and are released
   * under the same concurrency rule (see docs/api.md, "How async deliveries count against the
   * concurrency limit"). Several pending calls on one thread are all served, whatever the limit.
   *
   * A pending call keeps the process alive (as a pending timer would).
   *
   * Never throws: every error is a rejection.
   *
   * @param options - see {@link GetAsyncOptions}.
   * @default `{}` (no timeout, no signal)
   * @returns the packet, or `null` when `timeoutMs` expires first.
   * @throws {TypeError} (as a rejection) `options`, `options.timeoutMs` or `options.signal` has
   *   the wrong type, or `options` has an unknown key (e.g. `timeout`: refused, naming it).
   * @throws {RangeError} (as a rejection) `options.timeoutMs` is negative or NaN.
   * @throws {PortClosedError} (as a rejection) the port is closed (or shut down and drained),
   *   before or while waiting.
   * @throws The signal's `reason` (by default a `DOMException` named `'AbortError'`), as a
   *   rejection, when `options.signal` is or becomes aborted. A packet that was already on its way
   *   to the aborted call goes back to the head of the queue.
   * @throws Whatever the signal itself throws (its `aborted` or `reason` getter, its
   *   `addEventListener`), as a rejection; nothing is then registered, so no packet is lost.
   */
  getAsync(options: GetAsyncOptions = {}): Promise<Packet | null> {
    let timeout: number
    let signal: AbortSignal | undefined
    try {
      const opts = validateOptions<GetAsyncOptions>('options', options, 'getAsync()', GET_ASYNC_OPTIONS)
      timeout = opts.timeoutMs === undefined ? -1 : toNativeTimeout('options.timeoutMs', opts.timeoutMs)
      signal = opts.signal
      validateSignal('options.signal', signal)
      // Inside the try: the signal's getters are the caller's code and may throw.
      if (signal?.aborted === true) return Promise.reject(Errors.aborted(signal))
    } catch (error) {
      return Promise.reject(error)
    }

    const s = this.#thread
    const native = this.#native
    return new Promise<Packet | null>((resolve, reject) => {
      const waiter: AsyncWaiter = {
        port: native,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        settled: false,
      }
      /** The waiter's id once registered; 0 before. */
      let id = 0
      if (signal !== undefined) {
        // The listener goes on before the waiter is registered: if addEventListener throws,
        // there is nothing to withdraw, and no packet can be handed to a promise that rejected.
        const onAbort = (): void => {
          if (waiter.settled) return
          // Withdrawn (or not registered yet): forget it. Not withdrawn: the delivery is in
          // flight; leaving the waiter in the map, settled, makes the callback hand the packet
          // back to the queue's head.
          if (id > 0 && native.cancelAsync(id)) s.waiters.delete(id)
          finishWaiter(waiter)
          reject(Errors.aborted(signal))
        }
        waiter.onAbort = onAbort
        try {
          signal.addEventListener('abort', onAbort, { once: true })
        } catch (error) {
          waiter.onAbort = undefined
          waiter.settled = true
          reject(error)
          return
        }
        if (waiter.settled) return // the signal called the listener at once
      }

      id = registerWaiter(s, waiter)
      if (id <= 0) {
        if (!waiter.settled) {
          finishWaiter(waiter)
          reject(this.#statusError(id))
        }
        return
      }
      if (waiter.settled) return

      if (timeout >= 0) {
        waiter.timer = setTimeout(() => {
          waiter.timer = undefined
          if (waiter.settled) return
          if (native.cancelAsync(id)) {
            s.waiters.delete(id)
            finishWaiter(waiter)
            resolve(null)
          }
          // else: a packet is already on its way to this waiter; the delivery resolves with it.
        }, timeout)
      }
    })
  }

  /**
   * Runs `fn` while this thread does not count as running on the port, so the port may release
   * another waiter meanwhile (what IOCP does when a running thread blocks on something else).
   * Use it around blocking work that is not the port's: `Atomics.wait`, synchronous I/O, a
   * `get()` on another port. When `fn` returns, the thread counts as running again, possibly
   * above the limit for a while. Nestable.
   *
   * If `fn` returns a promise (a thenable), the thread counts as running again only once it
   * settles, and `blocking` returns a promise of the same outcome.
   *
   * @param fn - the work to run.
   * @returns what `fn` returns (a promise, if `fn` returned a thenable).
   * @throws {TypeError} `fn` is not a function.
   * @throws {PortClosedError} the port is closed.
   * @throws Whatever `fn` throws, or what reading the `then` of its result throws (the thread
   *   counts as running again first).
   */
  blocking<T>(fn: () => PromiseLike<T>): Promise<T>
  blocking<T>(fn: () => T): T
  blocking(fn: () => unknown): unknown {
    validateFunction('fn', fn)
    this.#assertOpen()
    const native = this.#native
    native.blockingEnter()
    let result: unknown
    let then: ReturnType<typeof thenOf>
    try {
      result = fn()
      then = thenOf(result)
    } catch (error) {
      native.blockingLeave()
      throw error
    }
    if (then === undefined) {
      native.blockingLeave()
      return result
    }
    // Calls the `then` already read (a second read could throw, or answer differently); if the
    // call throws, the executor turns that into a rejection, which still reaches `finally`.
    const thenable = result
    return new Promise<unknown>((resolve, reject) => {
      then.call(thenable, resolve, reject)
    }).finally(() => native.blockingLeave())
  }

  /**
   * Closes the port for every thread (as closing the last handle does on Windows): every waiter,
   * blocking or async, wakes with {@link PortClosedError}, and every later call on the port, in
   * any thread, throws it (`getAsync()` rejects with it). Packets still queued are not dropped:
   * they are returned, in FIFO order, payloads included.
   *
   * Idempotent: a second call (on this wrapper, or after another thread closed the port)
   * returns `[]`. Does not block.
   *
   * @returns the packets that were still queued.
   */
  close(): Packet[] {
    if (this.#closed) return []
    this.#closed = true
    io.settle(this.#io)  // in-flight I/O completes into the queue returned below
    return packetsFromFlat(this.#native.close())
  }

  /**
   * Starts a graceful drain: posts are refused from now on ({@link PortClosedError}), while
   * getters keep taking what is queued; once the queue is empty, every waiter wakes with
   * {@link PortClosedError}. `fromHandle` still opens a port that is shut down but not closed.
   * Idempotent. Does not block.
   *
   * @throws {PortClosedError} the port is closed.
   */
  shutdown(): void {
    if (this.#closed) throw Errors.portClosed()
    io.settle(this.#io)  // in-flight I/O completes (ECANCELED) into the queue being drained
    const status = this.#native.shutdown()
    if (status !== OK) throw this.#statusError(status)
  }

  /**
   * A snapshot of the port's counters. Does not block.
   *
   * @throws {PortClosedError} the port is closed.
   */
  stats(): PortStats {
    const out = this.#readStats()
    if (out[7] === STATE_CLOSED) throw Errors.portClosed()
    return {
      queued: out[0]!,
      running: out[1]!,
      waiting: out[2]!,
      posted: out[3]!,
      dequeued: out[4]!,
      concurrency: out[5]!,
      capacity: out[6]!,
      state: out[7] === STATE_SHUT_DOWN ? 'shutdown' : 'open',
      io: io.ioStats(this.#io),
    }
  }

  /**
   * For pools: takes back the packets that a thread which has exited was holding (delivered to
   * it and not followed by another get on this port), so that their work can be retried. Each
   * packet is returned once; later calls for the same thread return `[]`. Does not block.
   *
   * @param threadId - the `worker.threadId` of the exited thread.
   * @returns the held packets, oldest first (their payloads went to the dead thread and are
   *   `undefined` here).
   * @throws {TypeError} `threadId` is not a number.
   * @throws {RangeError} `threadId` is not a non-negative integer.
   * @throws {PortClosedError} the port is closed.
   */
  recoverHeld(threadId: number): Packet[] {
    validateInteger('threadId', threadId, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer')
    this.#assertOpen()
    return packetsFromFlat(this.#native.recoverHeld(threadId))
  }

  /**
   * Associates the file descriptor `fd` with this port (IOCP's
   * `CreateIoCompletionPort(FileHandle, ExistingPort, CompletionKey, 0)`): every operation on it
   * through {@link CompletionPort.read}, {@link CompletionPort.write} or
   * {@link CompletionPort.fsync} completes to this port as a packet carrying `key`. The port
   * keeps its own duplicate of `fd`, so I/O in flight is unaffected if `fd` is closed; call
   * {@link CompletionPort.dissociate} before closing `fd` to release it. The port's first
   * association picks its backend ({@link CompletionPortOptions.io}). Does not block.
   *
   * @param fd - an open file descriptor of a regular file or a block device.
   * @param key - the completion key of its packets: an integer in [0, 2^53-1] or a bigint.
   * @throws {PortIoError} `fd` is not open (`EBADF`), not a file, already associated, the port
   *   has a capacity, or the backend asked for cannot run here.
   * @throws {PortClosedError} the port is closed or shut down.
   */
  associate(fd: number, key: number | bigint): void {
    io.associate(this.#io, fd, key)
  }

  /**
   * Ends the association of `fd`: its operations in flight are cancelled and waited for (their
   * packets are queued), and the port's duplicate of `fd` is closed. Blocks only until those
   * operations end (regular-file I/O ends in bounded time).
   *
   * @throws {PortIoError} `fd` is not associated with this port.
   */
  dissociate(fd: number): void {
    io.dissociate(this.#io, fd)
  }

  /**
   * Reads from `fd` at `position` into `buffer` (IOCP's `ReadFile` with an `OVERLAPPED`).
   * Returns at once; the completion is a packet `{ key, bytes, overlapped }` (`bytes` read, `0`
   * at end of file), or `{ key, bytes: 0, overlapped, code }` if the read failed. `buffer`
   * belongs to the operation until that packet is dequeued: do not touch it before.
   *
   * @param fd - a descriptor associated with this port.
   * @param buffer - a view over a `SharedArrayBuffer` (not an `ArrayBuffer`, not a growable one).
   * @param position - the file offset, an integer in [0, 2^53-1].
   * @param overlapped - the packet's overlapped value (an integer or a bigint).
   * @param length - bytes to read, at most `buffer.byteLength`.
   * @default length: `buffer.byteLength`
   * @throws {TypeError} / {RangeError} an argument is wrong (message names it); nothing is queued.
   * @throws {PortIoError} `fd` is not associated (`ERR_IOCP_NOT_ASSOCIATED`) or not open (`EBADF`).
   * @throws {PortClosedError} the port is closed or shut down.
   */
  read(fd: number, buffer: ArrayBufferView, position: number, overlapped: number | bigint, length?: number): void {
    io.transfer(this.#io, false, fd, buffer, position, overlapped, length)
  }

  /**
   * Writes `buffer` to `fd` at `position` (IOCP's `WriteFile` with an `OVERLAPPED`); the
   * completion's `bytes` is the count written. Same rules as {@link CompletionPort.read}.
   */
  write(fd: number, buffer: ArrayBufferView, position: number, overlapped: number | bigint, length?: number): void {
    io.transfer(this.#io, true, fd, buffer, position, overlapped, length)
  }

  /**
   * Flushes `fd` to storage (IOCP's `FlushFileBuffers`, made overlapped); completes with
   * `bytes` 0. Same rules as {@link CompletionPort.read}.
   */
  fsync(fd: number, overlapped: number | bigint): void {
    io.fsync(this.#io, fd, overlapped)
  }

  /**
   * Submits many operations in one call (one system call on io_uring). Every request is
   * validated first: if any is wrong, the error names it (`requests[3].position`) and nothing is
   * queued.
   *
   * @param requests - {@link io.IoRequest}s.
   */
  submit(requests: readonly io.IoRequest[]): void {
    io.submit(this.#io, requests)
  }

  /**
   * Cancels the operations in flight on `fd` (all of them, or the one(s) with `overlapped`), as
   * `CancelIoEx` does: each completes with `code: 'ECANCELED'`, except one the kernel had already
   * finished, which completes normally. Does not block.
   *
   * @returns how many operations were asked to cancel (`0`: none was in flight).
   * @throws {PortIoError} `fd` is not associated with this port.
   */
  cancel(fd: number, overlapped?: number | bigint): number {
    return io.cancel(this.#io, fd, overlapped)
  }

  get #io(): io.IoTarget {
    return (this.#ioTarget ??= {
      native: this.#native,
      binding: this.#thread.binding,
      preference: this.#ioPreference,
      assertOpen: () => {
        if (this.#closed || this.#readStats()[7] !== 0) throw Errors.portClosed()
      },
    })
  }

  #readStats(): Float64Array {
    const out = this.#thread.stats
    this.#native.stats(out)
    return out
  }

  /** Throws {@link PortClosedError} if this wrapper, or any thread, closed the port. */
  #assertOpen(): void {
    if (this.#closed || this.#readStats()[7] === STATE_CLOSED) throw Errors.portClosed()
  }

  #postError(status: number): Error {
    if (status === FULL) return Errors.portFull(this.#readStats()[6]!)
    return this.#statusError(status)
  }

  #statusError(status: number): Error {
    if (status === CLOSED) return Errors.portClosed()
    return new Error(`@iocp/native returned an unexpected status ${status}`)
  }
}
