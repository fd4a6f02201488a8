/**
 * What @iocp/core keeps per thread: the addon, its scratch buffer and the pending async waiters.
 *
 * Protocol with the addon (see @iocp/native's native.d.ts):
 * - `binding.init(scratch, threadId, onAsync)` runs once per thread, on first use (the first
 *   port this thread creates or opens). Module state is per thread already (each worker
 *   evaluates its own copy of this module), so plain module variables hold it.
 * - `get` / `getMany` write packets into the scratch (8 words each) and return a count; a
 *   packet's payload is fetched with `takeData(i)` right after, before the next get.
 * - `getAsync()` registers a waiter and returns its id; the delivery comes later, on this
 *   thread's event loop, through `onAsync(id, status, ...packet)`. The callback's return value
 *   tells the addon whether the packet was taken: `false` (the waiter was aborted meanwhile)
 *   puts it back at the head of the queue, so an aborted wait never loses a packet.
 * - `cancelAsync(id)` withdraws a waiter; `false` means its delivery is already on the way, so
 *   the waiter stays in the map, marked settled, until the callback arrives and bounces it.
 * - The main thread's exit hook (`closeAllPorts()` on 'exit') is installed by @iocp/native's
 *   index.js when the addon loads, not here.
 *
 * Two copies of this package in one thread (two versions of @iocp/core over one deduplicated
 * @iocp/native, or a bundle beside node_modules) share one addon instance, and the addon keeps
 * one scratch and one delivery callback per thread: a second `init` would take both from the
 * first copy, whose async waiters would then never settle. So the state hangs off the binding
 * object itself (one per thread and addon instance), and every copy that speaks the same
 * {@link THREAD_STATE_PROTOCOL} uses it; a copy that speaks another gets a clear error.
 */
import { threadId } from 'node:worker_threads'
import type { NativeBinding, NativePort } from '@iocp/native'
import { Errors } from '../errors.js'
import { bundleRequire } from '../shared.js'
import { CLOSED, C_CONSUMER_WORDS, TERMINATING, checkLayout } from './layout.js'
import {
  FLAG_HAS_DATA,
  FLAG_IO_ERROR,
  FLAG_KEY_BIGINT,
  FLAG_OVERLAPPED_BIGINT,
  PACKET_WORDS,
  makePacket,
  u64Of,
  view64,
  type Packet,
} from './packet.js'

export { CLOSED, FULL, OK, TERMINATING, TIMEOUT } from './layout.js'

/** Packets the scratch holds at first; `getMany` grows it on demand up to {@link MAX_BATCH}. */
const INITIAL_SCRATCH_PACKETS = 64
/** The most packets one `getMany` returns, and the largest {@link PacketBatch} capacity. */
export const MAX_BATCH = 65_536

/** One pending {@link CompletionPort.getAsync} call. */
export interface AsyncWaiter {
  /** The port it waits on, for `cancelAsync`. */
  readonly port: NativePort
  readonly resolve: (packet: Packet | null) => void
  readonly reject: (reason: unknown) => void
  /** The finite-timeout timer, if any. */
  timer: ReturnType<typeof setTimeout> | undefined
  readonly signal: AbortSignal | undefined
  /** The `'abort'` listener on `signal`, if any. */
  onAbort: (() => void) | undefined
  /**
   * The promise is settled (aborted, or rejected); a delivery that still arrives for this waiter
   * is handed back to the port.
   */
  settled: boolean
}

/** The per-thread state. */
export interface ThreadState {
  readonly binding: NativeBinding
  /** The scratch (capacity * 8 words) and a 64-bit view of it. Replaced when it grows. */
  scratch: Uint32Array
  scratch64: BigUint64Array
  /** Packets the scratch holds. */
  capacity: number
  /** Pending async waiters by id. */
  readonly waiters: Map<number, AsyncWaiter>
  /** Reused by `stats()`. */
  readonly stats: Float64Array
  /** This thread's consumer block (layout.ts, C_*), shared with the engine. */
  readonly consumer: Int32Array
  /** The waiter whose `getAsync()` is in progress, in case the addon delivers before returning. */
  registering: AsyncWaiter | undefined
}

/**
 * The shape of {@link ThreadState}, {@link AsyncWaiter} and the delivery callback, as copies of
 * this package share them (see the file comment): bump it when any of them changes.
 */
export const THREAD_STATE_PROTOCOL = 1

/** Where a thread's state hangs off the binding object. */
const THREAD_STATE = Symbol.for('@iocp/core.threadState')

interface Attached {
  readonly protocol: number
  readonly state: ThreadState
}

let state: ThreadState | undefined

/** This thread's state, initialising the addon on first use. */
export function thread(): ThreadState {
  return (state ??= attach())
}

function attach(): ThreadState {
  // index.js assigns the binding to module.exports (node-gyp-build), so require returns it.
  const binding = bundleRequire('@iocp/native') as NativeBinding & { [THREAD_STATE]?: Attached }
  const attached = binding[THREAD_STATE]
  if (attached !== undefined) {
    if (attached.protocol === THREAD_STATE_PROTOCOL) return attached.state
    throw Errors.incompatibleCopy(attached.protocol, THREAD_STATE_PROTOCOL)
  }
  const fresh = init(binding)
  Object.defineProperty(binding, THREAD_STATE, { value: { protocol: THREAD_STATE_PROTOCOL, state: fresh } satisfies Attached })
  return fresh
}

function init(binding: NativeBinding): ThreadState {
  if (
    binding.PACKET_WORDS !== PACKET_WORDS ||
    binding.FLAG_KEY_BIGINT !== FLAG_KEY_BIGINT ||
    binding.FLAG_OVERLAPPED_BIGINT !== FLAG_OVERLAPPED_BIGINT ||
    binding.FLAG_HAS_DATA !== FLAG_HAS_DATA ||
    binding.FLAG_IO_ERROR !== FLAG_IO_ERROR
  ) {
    throw new Error('@iocp/native does not match this version of @iocp/core (scratch layout differs)')
  }
  checkLayout(binding.LAYOUT)
  const scratch = new Uint32Array(INITIAL_SCRATCH_PACKETS * PACKET_WORDS)
  // The callback reaches the state through this cell, which is set before any delivery can come.
  const cell: { state?: ThreadState } = {}
  const block = binding.init(
    scratch,
    threadId,
    (id: number, status: number, keyLo: number, keyHi: number, ovLo: number, ovHi: number, bytes: number, flags: number) =>
      onAsync(cell.state!, id, status, keyLo, keyHi, ovLo, ovHi, bytes, flags),
  )
  return (cell.state = {
    binding,
    scratch,
    scratch64: view64(scratch),
    capacity: INITIAL_SCRATCH_PACKETS,
    waiters: new Map(),
    stats: new Float64Array(8),
    // Without the addon's shared memory (a runtime that forbids it), a block that never names
    // a port keeps every get on the native path.
    consumer: block === undefined ? new Int32Array(C_CONSUMER_WORDS) : new Int32Array(block),
    registering: undefined,
  })
}

/** Grows the scratch to hold at least `packets` packets (at most {@link MAX_BATCH}). */
export function ensureScratch(s: ThreadState, packets: number): void {
  const wanted = Math.min(packets, MAX_BATCH)
  if (wanted <= s.capacity) return
  let capacity = s.capacity
  while (capacity < wanted) capacity *= 2
  capacity = Math.min(capacity, MAX_BATCH)
  const scratch = new Uint32Array(capacity * PACKET_WORDS)
  s.binding.setScratch(scratch)
  s.scratch = scratch
  s.scratch64 = view64(scratch)
  s.capacity = capacity
}

/**
 * Registers `waiter` with the addon. Returns the waiter's id (> 0), or {@link CLOSED}; in the
 * unexpected case that the addon delivered during the call, the waiter is already settled and
 * is not added to the map.
 */
export function registerWaiter(s: ThreadState, waiter: AsyncWaiter): number {
  s.registering = waiter
  let id: number
  try {
    id = waiter.port.getAsync()
  } finally {
    s.registering = undefined
  }
  if (id > 0 && !waiter.settled) s.waiters.set(id, waiter)
  return id
}

/** Marks `waiter` settled and removes its timer and abort listener. */
export function finishWaiter(waiter: AsyncWaiter): void {
  waiter.settled = true
  if (waiter.timer !== undefined) {
    clearTimeout(waiter.timer)
    waiter.timer = undefined
  }
  if (waiter.onAbort !== undefined) {
    const onAbort = waiter.onAbort
    waiter.onAbort = undefined
    try {
      waiter.signal?.removeEventListener('abort', onAbort)
    } catch {
      // The caller's signal threw: the listener may stay, but it does nothing once settled. A
      // throw here would leave the promise pending (this runs before it settles).
    }
  }
}

/**
 * The addon's async delivery callback: runs on this thread's event loop, once per delivered
 * waiter. Returns whether the packet was taken.
 */
function onAsync(
  s: ThreadState,
  id: number,
  status: number,
  keyLo: number,
  keyHi: number,
  ovLo: number,
  ovHi: number,
  bytes: number,
  flags: number,
): boolean {
  const waiters = s.waiters
  let waiter = waiters.get(id)
  if (waiter === undefined) {
    waiter = s.registering
    s.registering = undefined
    if (waiter === undefined) return false
  } else {
    waiters.delete(id)
  }
  // Aborted while the delivery was in flight: give the packet back (to the head of the queue).
  if (waiter.settled) return false
  finishWaiter(waiter)
  if (status === CLOSED) {
    waiter.reject(Errors.portClosed())
    return false
  }
  if (status === TERMINATING) {
    waiter.resolve(null)
    return false
  }
  waiter.resolve(
    makePacket(
      u64Of(keyLo, keyHi, (flags & FLAG_KEY_BIGINT) !== 0),
      bytes,
      u64Of(ovLo, ovHi, (flags & FLAG_OVERLAPPED_BIGINT) !== 0),
      // Taken only now that the packet is accepted: a refused one goes back with its payload.
      (flags & FLAG_HAS_DATA) !== 0 ? s.binding.takeAsyncData() : undefined,
      flags,
    ),
  )
  return true
}
