/**
 * The contract between the addon (src/binding/) and @iocp/core. Internal: every argument is
 * positional and already validated by @iocp/core; the addon only converts. Status codes, not
 * exceptions, cross this boundary on the hot path, so @iocp/core owns every error message.
 *
 * Scratch layout: packets are written as 8 uint32 words each (stride PACKET_WORDS, the same as
 * a ring slot of the shared memory):
 *   [keyLo, keyHi, overlappedLo, overlappedHi, bytes, flags, payloadLo, payloadHi]
 * The payload words are 0 in what the addon writes (a payload is fetched with takeData(i)).
 * flags: FLAG_KEY_BIGINT (key was posted as a bigint), FLAG_OVERLAPPED_BIGINT, FLAG_HAS_DATA
 * (the packet carries a payload: fetch it with takeData(i) right after the call that filled
 * the scratch, before the next get on this thread).
 */

/*
 * Status codes returned by the addon (plain numbers; counts >= 0 are returned as themselves):
 *    0  post: posted. get*: timed out (nothing taken).
 *   -1  Closed: the port is closed (or shut down, for post; shut down and drained, for get).
 *   -2  Full: post on a port at its capacity; nothing was posted.
 *   -3  Terminating: get*: this thread is being terminated; what it was handed went back to the
 *       head of the queue.
 */

declare namespace binding {
  export interface NativePort {
    /** key, overlapped: integers in [0, 2^53-1]; bytes: uint32. Never blocks. 0 | Closed | Full */
    post(key: number, bytes: number, overlapped: number): number
    /** General form: key/overlapped number or bigint (remembered per packet), optional payload
     *  copied once. 0 | Closed | Full */
    postEx(key: number | bigint, bytes: number, overlapped: number | bigint, data: Uint8Array | undefined): number
    /** Posts `count` packets laid out like the scratch (flags: only the bigint bits are kept;
     *  FLAG_HAS_DATA with a Uint8Array at data[i] posts a copy of it) under one lock.
     *  Returns how many were posted (fewer than count only when a capacity was reached) | Closed */
    postMany(words: Uint32Array, count: number, data: Array<Uint8Array | undefined> | undefined): number
    /** timeoutMs: -1 = infinite, 0 = poll, > 0 = milliseconds (integer). Blocks this thread.
     *  1 = one packet in scratch slot 0 | 0 = timeout | Closed | Terminating */
    get(timeoutMs: number): number
    /** Up to max packets (max <= scratch capacity) into the scratch. count >= 1 | 0 | Closed | Terminating */
    getMany(max: number, timeoutMs: number): number
    /** Same as getMany, into a caller-owned Uint32Array (length >= max * 8). Payloads are
     *  fetched with takeData(i) as for getMany. */
    getManyInto(out: Uint32Array, max: number, timeoutMs: number): number
    /** Register an async waiter for this thread; returns its id (> 0) or Closed.
     *  Delivery comes through the callback given to init(). */
    getAsync(): number
    /** Withdraw a pending async waiter: true if it was still waiting (now removed);
     *  false if its delivery is already on the way to the callback. */
    cancelAsync(id: number): boolean
    /** The calling thread stops / starts counting as running on this port (nestable). */
    blockingEnter(): void
    blockingLeave(): void
    /** Close: wakes every waiter with Closed. Returns what was queued, as a flat array of
     *  7 entries per packet: keyLo, keyHi, ovLo, ovHi, bytes, flags, data (Uint8Array | undefined). */
    close(): Array<number | Uint8Array | undefined>
    /** No new posts; waiters drain, then Closed. 0 | Closed */
    shutdown(): number
    /** Writes [queued, running, waiting, posted, dequeued, concurrency, capacity, state]
     *  into out (Float64Array(8)). state: 0 open, 1 shut down, 2 closed. */
    stats(out: Float64Array): void
    /** [id, pin]: the pin keeps the port alive until a fromHandle of it opens it, or close(). */
    handle(): [number, number]
    /** Packets held by a thread that has exited (delivered and not followed by another get),
     *  removed from the record; flat array like close(). Empty if none. */
    recoverHeld(threadId: number): Array<number | Uint8Array | undefined>
    /** The port's control block (shared_layout.h's ControlWord), or undefined where the runtime
     *  forbids external memory (then every call goes through the functions above). */
    control(): ArrayBuffer | undefined
    /** The current ring and its generation (kRingGen), for a view that found its own stale. */
    ring(): [ArrayBuffer | undefined, number]
    /** JS's unlock found the lock word `word` (kTailLock or kHeadLock) at 2: wake one thread
     *  parked on it. */
    wakeLock(word: number): void
  }

  /** shared_layout.h's word indices and the status codes (as positive numbers), from the addon. */
  export type Layout = Readonly<Record<string, number>>

  export interface NativeBinding {
    /** Once per thread (environment): the scratch (Uint32Array, length = capacity * 8), the
     *  thread id (worker_threads.threadId) and the async delivery callback. The callback is
     *  called on this thread's event loop for each delivered async waiter as
     *  (id, status, keyLo, keyHi, ovLo, ovHi, bytes, flags), status 0 (delivered) or -1
     *  (the port closed; the other values are then 0), and returns true if it took
     *  the packet, false to give it back (an aborted waiter): it goes back to the queue's head,
     *  payload included. A callback that takes the packet gets its payload (FLAG_HAS_DATA) with
     *  takeAsyncData() before it returns. Returns this thread's consumer block
     *  (ConsumerWord), or undefined where the runtime forbids external memory. */
    init(scratch: Uint32Array, threadId: number,
         onAsync: (id: number, status: number, keyLo: number, keyHi: number, ovLo: number,
                   ovHi: number, bytes: number, flags: number) => boolean): ArrayBuffer | undefined
    /** The payload whose token (kPayloadLo/Hi) a JS get read from the ring; undefined if the
     *  token is not live. */
    takePayload(lo: number, hi: number): Uint8Array | undefined
    /** Inside the async callback: the payload of the packet being delivered (once). */
    takeAsyncData(): Uint8Array | undefined
    /** Keeps a copy of `bytes`, a V8 code cache of @iocp/core's bundle, for the threads of this
     *  process that load the bundle later (src/binding/code_cache.cpp): the first one kept
     *  stays, except that the first one from a pool worker (`fromWorker`) replaces the main
     *  thread's. True if it was kept. */
    setCodeCache(bytes: Uint8Array, fromWorker: boolean): boolean
    /** A copy of the kept code cache, or undefined. */
    codeCache(): Buffer | undefined
    /** Whether the kept code cache came from a pool worker. */
    codeCacheFromWorker(): boolean
    /** Tests only: live native objects (handle-table entries, payloads not yet handed out). */
    debugCounts(): { ports: number, payloads: number }
    /** Tests only: C++ threads posting to `port` (see src/binding/debug_hooks.cpp). */
    debugNativeProducers(port: NativePort, firstProducer: number, producers: number, perProducer: number): void
    /** Tests only: joins every C++ producer started so far (blocks this thread). */
    debugJoinNativeProducers(): void
    readonly LAYOUT: Layout
    /** Replace the scratch (to grow it for a larger getMany). */
    setScratch(scratch: Uint32Array): void
    /** The payload of packet i of the last get/getMany on this thread (once; then gone). */
    takeData(i: number): Uint8Array
    /** concurrency >= 1, capacity 0 = unbounded, spinNs: how long a blocking get may poll before
     *  it sleeps (0 = at once), trackHeld: keep the held packets of exited threads for
     *  recoverHeld. */
    createPort(concurrency: number, capacity: number, spinNs: number, trackHeld: boolean): NativePort
    /** A NativePort, or Closed if the port was closed or no longer exists. */
    openPort(id: number, pin: number): NativePort | number
    /** Main thread's exit hook, installed by index.js itself (process.on('exit')): closes every
     *  port so that no thread stays blocked while Node joins the workers. */
    closeAllPorts(): void
    readonly PACKET_WORDS: 8
    readonly FLAG_KEY_BIGINT: 1
    readonly FLAG_OVERLAPPED_BIGINT: 2
    readonly FLAG_HAS_DATA: 4
    /** flags bit of an I/O completion that failed: `bytes` holds the errno. */
    readonly FLAG_IO_ERROR: 8
    /** Doubles per op in ioSubmitMany's meta. */
    readonly IO_META_WORDS: number

    // --- overlapped file I/O (src/binding/io_binding.cpp). Status codes: 0 ok, 1 fd not open,
    // 2 not a regular file / block device, 3 already associated, 4 not associated, 5 backend
    // unavailable (reason: ioWhy()), 6 the port has a capacity; ioAssociate: -errno if dup failed.
    /** preference: 0 auto, 1 thread pool, 2 io_uring (before the port's first association). */
    ioConfigure(port: NativePort, preference: number): number
    ioAssociate(port: NativePort, fd: number, key: number | bigint): number
    /** Cancels the fd's operations, waits for them, ends the association. */
    ioDissociate(port: NativePort, fd: number): number
    /** kind: 0 read, 1 write, 2 fsync (view undefined). The view is kept alive until completion.
     *  A status, or -ENOMEM with nothing submitted. */
    ioSubmit(port: NativePort, kind: number, fd: number, view: Uint8Array | undefined, position: number,
             length: number, overlapped: number | bigint): number
    /** meta: IO_META_WORDS doubles per op: [kind (+16 when overlapped is a bigint), fd, position,
     *  length, view index, byte offset in that view's SharedArrayBuffer, overlapped (a bigint's
     *  low 32 bits), a bigint's high 32 bits]; views: one view per distinct SharedArrayBuffer.
     *  0, or (index << 4 | status) of the first refused op, or -ENOMEM; nothing submitted unless 0. */
    ioSubmitMany(port: NativePort, meta: Float64Array, views: ArrayBufferView[], count: number): number
    /** How many operations were asked to cancel, or -status. */
    ioCancel(port: NativePort, fd: number, overlapped: number | bigint | undefined): number
    /** Cancels and waits for the port's operations and ends its associations. */
    ioClosePort(port: NativePort): void
    /** The backend's name (undefined before the first association); out = [submitted,
     *  completed, failed, cancelled, inFlight] of that backend, process-wide. */
    ioStats(port: NativePort, out: Float64Array): 'io_uring' | 'thread-pool' | undefined
    /** Why the last ioConfigure/ioAssociate on this thread answered 5 (unavailable). */
    ioWhy(): string
    /** Test hook: kind 0 thread pool, 1 io_uring; a paused backend starts nothing. Returns
     *  whether that backend exists in this process. */
    ioTestPause(kind: number, paused: boolean): boolean
    /** The address of the view's first byte modulo 4096. */
    ioPageOffset(view: Uint8Array): number
  }
}

declare const binding: binding.NativeBinding
export = binding
