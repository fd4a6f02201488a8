/**
 * The memory a pool's main thread and its workers share (SharedArrayBuffers), and what each
 * cell means. Packets carry the work; this memory carries only what a packet cannot:
 *
 * - **Task slots.** A task in flight owns one of {@link SLOTS} slots until its last packet is
 *   back (its result, its skip notice, or its recovery after its worker died). Its id,
 *   `generation * SLOTS + slot`, is the packet's `overlapped` value: the generation tells a
 *   slot's successive tasks apart, so a packet recovered from a dead thread is matched to the
 *   task it belonged to and to no other. `state[slot]` is the slot's abort handshake (below),
 *   `times[2 * slot]` the time the task started and `times[2 * slot + 1]` its run time, both in
 *   milliseconds on the main thread's clock (written by the worker when timing is recorded).
 * - **Loops.** Each worker runs one loop (pool/worker/loop.ts); loop `i` writes its `threadId` to
 *   `control[LOOP_CELLS + 2i]` before its first get and its phase to `control[LOOP_CELLS + 2i + 1]`,
 *   (LOOP_BOOT while it runs its boot task, before its loop) and `current[i * perLoop + j]` (j < `perLoop`, the pool's `concurrentTasksPerWorker`) hold
 *   the ids of the tasks it is running (0 for a free cell). `control[LIVE_LOOPS]` counts the
 *   loops that have not ended, for idle exits above `minThreads`.
 * - **Boot offers.** While a pool boots, the main thread offers each of its first tasks to every
 *   loop whose worker has not run its start yet, through the loop's boot gate `boot[i]`; the
 *   first worker to start takes it as its boot task (pool/worker/boot-task.ts) by claiming it,
 *   `bootClaims[k] = i + 1` for the task's offer `k`, and sends back the offers it did not take.
 * - **Names.** Task names other than the default are numbered by the main thread and written to
 *   the name table before the first packet that uses them, so a task packet carries a 16-bit
 *   index instead of the name.
 *
 * The abort handshake on `state[slot]` (every change is an Atomics compare-exchange):
 *
 * ```
 *   main posts:           QUEUED
 *   worker dequeues:      QUEUED  -> RUNNING      (fails on ABORTED: the task is skipped, never run)
 *   task returns promise: RUNNING -> ASYNC        (fails on ABORTED: the task's signal aborts now)
 *   main aborts:          QUEUED | RUNNING | ASYNC -> ABORTED, then Atomics.notify(state, slot)
 *   async task settles:   -> DONE, then Atomics.notify (ends the worker's Atomics.waitAsync)
 * ```
 *
 * The boot gate of a loop, `boot[i]`, and the claim of an offer, `bootClaims[k]` (each change an
 * Atomics compare-exchange or store):
 *
 * ```
 *   main starts the loop:    -> BOOT_OPEN
 *   main offers a task:      BOOT_OPEN -> BOOT_HANDING, posts the offer on the loop's side
 *                            channel, -> BOOT_OPEN, then Atomics.notify
 *   worker's start runs:     BOOT_OPEN -> BOOT_CLOSED (waiting out HANDING): no offer comes
 *                            after this, and every offer made is on its side channel (a post is
 *                            queued on the receiving port before it returns)
 *   worker takes an offer:   bootClaims[k]: 0 -> its loop index + 1 (one worker wins; an offer
 *                            index is never reused)
 *   main takes it back:      bootClaims[k]: 0 -> BOOT_WITHDRAWN (once a loop runs, or the pool
 *                            closes; a worker's claim after that fails)
 * ```
 *
 * A worker writes to a slot's cells only while its task is in flight, and always before the
 * post of the task's result (the port's lock orders those writes before the main thread's read);
 * the main thread resets the cells when it gives the slot to a new task.
 */
import { MAX_NAMES } from './codec.js'

/** Tasks in flight at once; more wait in the main thread's overflow queue. A power of two. */
export const SLOTS = 0x1_0000

/** Slot states. */
export const QUEUED = 0
export const RUNNING = 1
export const ASYNC = 2
export const ABORTED = 3
export const DONE = 4

/** control[LIVE_LOOPS]: loops started and not ended. */
export const LIVE_LOOPS = 0
/** The first per-loop cell of `control`. */
export const LOOP_CELLS = 2

/** Loop phases, in `control[LOOP_CELLS + 2i + 1]`. */
export const LOOP_STARTING = 0
export const LOOP_RUNNING = 1
/** The loop left because it was idle above `minThreads`; its worker exits next. */
export const LOOP_IDLE_EXIT = 2
/** The loop ended: the port closed, or (set by the main thread) its worker exited or its start failed. */
export const LOOP_ENDED = 3
/**
 * Before its loop, the worker runs its boot task (pool/worker/boot-task.ts), which counts as
 * running (outside `ctx.blocking()`: the phase is back to STARTING meanwhile).
 */
export const LOOP_BOOT = 4

/** Boot gates, in `boot[i]` (see the file comment). */
export const BOOT_OPEN = 0
export const BOOT_HANDING = 1
export const BOOT_CLOSED = 2

/** `bootClaims[k]` of an offer the main thread took back (the pool booted, or is closing): no worker takes it. */
export const BOOT_WITHDRAWN = -1

/** Bytes of the name table. */
const NAME_BYTES = 0x4_0000

/** The shared memory of one pool, as both sides see it. Structured-clonable. */
export interface PoolMemory {
  /** Slot states ({@link QUEUED} ...). */
  readonly state: Int32Array
  /** Per slot: started-at and run time (ms), or empty when timing is off. */
  readonly times: Float64Array
  /** {@link LIVE_LOOPS}, then two cells per loop. */
  readonly control: Int32Array
  /** One boot gate per loop ({@link BOOT_OPEN} ...). */
  readonly boot: Int32Array
  /** Per boot offer: 0, or the index + 1 of the loop that took it. As many as loops. */
  readonly bootClaims: Int32Array
  /** `perLoop` cells per loop: the ids of the tasks it runs, 0 in a free cell. */
  readonly current: Float64Array
  /** Tasks one loop runs at once (`concurrentTasksPerWorker`). */
  readonly perLoop: number
  /** [count, then (offset, length) per name]. Name 0 is the pool's default name. */
  readonly names: Int32Array
  /** UTF-8 bytes of the names. */
  readonly nameBytes: Uint8Array
}

function shared<T>(Ctor: new (buffer: SharedArrayBuffer) => T, bytes: number): T {
  return new Ctor(new SharedArrayBuffer(bytes))
}

/**
 * Allocates the shared memory of a pool of at most `loops` loops at once, each running at most
 * `perLoop` tasks at once.
 */
export function createPoolMemory(loops: number, perLoop: number, recordTiming: boolean): PoolMemory {
  return {
    state: shared(Int32Array, SLOTS * 4),
    times: shared(Float64Array, recordTiming ? SLOTS * 16 : 8),
    control: shared(Int32Array, (LOOP_CELLS + 2 * loops) * 4),
    boot: shared(Int32Array, loops * 4),
    bootClaims: shared(Int32Array, loops * 4),
    current: shared(Float64Array, loops * perLoop * 8),
    perLoop,
    names: shared(Int32Array, (1 + 2 * MAX_NAMES) * 4),
    nameBytes: shared(Uint8Array, NAME_BYTES),
  }
}


/** The ids of the tasks loop `loop` is running. */
export function runningIn(memory: PoolMemory, loop: number): number[] {
  const { current, perLoop } = memory
  const ids: number[] = []
  for (let i = loop * perLoop, end = i + perLoop; i < end; i++) if (current[i] !== 0) ids.push(current[i]!)
  return ids
}

/** Frees every task cell of loop `loop` (before it starts). */
export function clearLoop(memory: PoolMemory, loop: number): void {
  memory.current.fill(0, loop * memory.perLoop, (loop + 1) * memory.perLoop)
}

/** The index of the loop running task `id`; -1 if none is (it has not started, or has answered). */
export function loopRunning(memory: PoolMemory, id: number): number {
  const index = memory.current.indexOf(id)
  return index < 0 ? -1 : Math.floor(index / memory.perLoop)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Main thread: appends `name` to the table and returns its index, or -1 if the table is full.
 * The count is stored last (Atomics), after the bytes and offsets it publishes.
 */
export function addName(memory: PoolMemory, name: string): number {
  const { names, nameBytes } = memory
  const count = Atomics.load(names, 0)
  if (count >= MAX_NAMES) return -1
  const bytes = encoder.encode(name)
  const end = count === 0 ? 0 : names[2 * count - 1]! + names[2 * count]!
  if (end + bytes.length > nameBytes.length) return -1
  nameBytes.set(bytes, end)
  names[2 * count + 1] = end
  names[2 * count + 2] = bytes.length
  Atomics.store(names, 0, count + 1)
  return count
}

/** Worker: the name at `index` (published before any packet that uses it). */
export function nameAt(memory: PoolMemory, index: number): string {
  const { names, nameBytes } = memory
  if (index >= Atomics.load(names, 0)) throw new Error(`@iocp/core: task name ${index} was never published`)
  const offset = names[2 * index + 1]!
  // TextDecoder refuses views of shared memory: copy first.
  return decoder.decode(nameBytes.slice(offset, offset + names[2 * index + 2]!))
}
