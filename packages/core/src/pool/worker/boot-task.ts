/**
 * A worker's boot task: one of the first tasks of a pool that is still booting, offered to the
 * workers that have not started and taken by the first of them to start (pool/shared/protocol.ts,
 * "Boot task"), and run before the worker loads @iocp/core's
 * bundle and the addon and opens the ports. So a new pool's first result costs what Piscina's
 * costs (a worker's boot and the task module), not also the bundle and the addon, which are
 * most of a new thread's work after its boot (docs/pool.md, "Time to the first result").
 *
 * The task runs as the loop runs a task (pool/worker/loop.ts): the same claim of its slot and
 * loop cell, the same context, the same encoding of its outcome. Two things differ:
 * - its outcome goes back on the loop's side channel, not on the results port;
 * - its context opens the task port only when the task first uses it (`post`, `io`). The task
 *   does not count on the port: its loop's phase, LOOP_BOOT, counts it (`stats().running`),
 *   except inside `blocking()`; and the main thread offers boot tasks only where no task
 *   can run beside them above the concurrency limit (pool/main/workers.ts).
 *
 * This file is bundled into dist/worker-start.cjs, apart from the bundle: it must not import
 * anything that holds per-thread state (the port, the addon).
 */
import { performance } from 'node:perf_hooks'
import { threadId } from 'node:worker_threads'
import type { CompletionPort } from '../../port/completion-port.js'
import { isThenable } from '../../shared.js'
import { PoolErrors } from '../shared/errors.js'
import { TASK_BASE, decodeValue, encoded, hiOf, tagOf } from '../shared/codec.js'
import { ASYNC, LOOP_BOOT, LOOP_CELLS, LOOP_STARTING, QUEUED, RUNNING, SLOTS, nameAt } from '../shared/memory.js'
import type { BootAnswer, BootTask, LoopInit } from '../shared/protocol.js'
import { SKIPPED_KEY, answerOf, flushStdio, stdioPending } from './answer.js'
import { TaskScope, type ScopePort } from './task-context.js'
import { findFunction, type TaskModule } from './task-module.js'


/**
 * The task port as a boot task's context sees it: opened (through the bundle) when the task
 * first posts or does I/O. `blocking(fn)` stops the task counting while `fn` runs (or until
 * the promise it returns settles), as the port's `blocking()` does for a loop's task.
 */
class BootPort implements ScopePort {
  readonly #open: () => CompletionPort
  /** Whether the task counts as running (the loop's phase: LOOP_BOOT, or STARTING). */
  readonly #counts: (yes: boolean) => void
  #port: CompletionPort | undefined
  /** blocking() calls in progress (they nest and overlap, as the port's do). */
  #blocking = 0
  /** The task has ended: a blocking() that outlives it changes nothing. */
  #ended = false

  constructor(open: () => CompletionPort, counts: (yes: boolean) => void) {
    this.#open = open
    this.#counts = counts
  }

  /** The task ended: it stops counting, and a blocking() still in progress no longer counts it again. */
  end(): void {
    this.#ended = true
    this.#counts(false)
  }

  #enter(): void {
    if (this.#blocking++ === 0 && !this.#ended) this.#counts(false)
  }

  #leave(): void {
    if (--this.#blocking === 0 && !this.#ended) this.#counts(true)
  }

  get #opened(): CompletionPort {
    return (this.#port ??= this.#open())
  }

  blocking<T>(fn: () => PromiseLike<T>): Promise<T>
  blocking<T>(fn: () => T): T
  blocking(fn: () => unknown): unknown {
    this.#enter()
    let result: unknown
    try {
      result = fn()
    } catch (error) {
      this.#leave()
      throw error
    }
    if (!isThenable(result)) {
      this.#leave()
      return result
    }
    return Promise.resolve(result).finally(() => this.#leave())
  }

  post(key: number | bigint, bytes?: number, overlapped?: number | bigint, data?: Uint8Array): void {
    this.#opened.post(key, bytes, overlapped, data)
  }

  associate(...args: Parameters<CompletionPort['associate']>): void {
    this.#opened.associate(...args)
  }

  dissociate(...args: Parameters<CompletionPort['dissociate']>): void {
    this.#opened.dissociate(...args)
  }

  read(...args: Parameters<CompletionPort['read']>): ReturnType<CompletionPort['read']> {
    return this.#opened.read(...args)
  }

  write(...args: Parameters<CompletionPort['write']>): ReturnType<CompletionPort['write']> {
    return this.#opened.write(...args)
  }

  fsync(...args: Parameters<CompletionPort['fsync']>): ReturnType<CompletionPort['fsync']> {
    return this.#opened.fsync(...args)
  }

  submit(...args: Parameters<CompletionPort['submit']>): ReturnType<CompletionPort['submit']> {
    return this.#opened.submit(...args)
  }

  cancel(...args: Parameters<CompletionPort['cancel']>): ReturnType<CompletionPort['cancel']> {
    return this.#opened.cancel(...args)
  }
}

/**
 * Runs `task`, from the task module `module`, and answers it on the loop's side channel. The
 * task's own errors are its outcome. Throws only on a bug of its own, which must end the worker
 * (as in the loop): its exit then fails the task. `openTasks` opens the pool's task port (it
 * loads the bundle).
 */
export async function runBootTask(init: LoopInit, task: BootTask, module: TaskModule, openTasks: () => CompletionPort): Promise<void> {
  const side = init.side
  const answer = (message: BootAnswer): void => side.postMessage(message)
  const { memory } = init
  const id = task.boot
  const slot = id % SLOTS
  // A boot task runs only with one task per loop (pool/main/workers.ts): the loop's one cell.
  const cell = init.loop * memory.perLoop
  // The cell first, as the loop does: whenever the main thread sees the task started, it finds
  // the thread running it (to end it after an abort, or to fail it if the thread dies).
  memory.current[cell] = id
  if (Atomics.compareExchange(memory.state, slot, QUEUED, RUNNING) !== QUEUED) {
    // Aborted on its way here: never run; the slot is the main thread's again.
    memory.current[cell] = 0
    answer({ boot: id, claim: task.claim, key: SKIPPED_KEY, bytes: 0, data: undefined })
    return
  }
  const phase = LOOP_CELLS + 2 * init.loop + 1
  const counts = (yes: boolean): void => {
    Atomics.store(memory.control, phase, yes ? LOOP_BOOT : LOOP_STARTING)
  }
  counts(true)
  const started = performance.now()
  const relative = task.key - TASK_BASE
  const tag = tagOf(relative)
  const enc = tag & 15
  const nameIndex = tag >>> 4
  const name = nameIndex === 0 ? init.defaultName : nameAt(memory, nameIndex)
  let ok = true
  let value: unknown
  const port = new BootPort(openTasks, counts)
  const ctx = new TaskScope(port, threadId, memory.state, slot, name)
  try {
    const payload = decodeValue(enc, hiOf(relative, tag), task.bytes, task.data)
    const fn = findFunction(module, name)
    if (fn === undefined) throw PoolErrors.noTask(init.filename, name)
    value = fn(payload, ctx)
    if (isThenable(value)) {
      ctx.enterAsync(Atomics.compareExchange(memory.state, slot, RUNNING, ASYNC) === RUNNING)
      value = await value
    }
  } catch (error) {
    ok = false
    value = error
  }
  ctx.end()
  port.end()
  if (init.recordTiming) {
    memory.times[2 * slot] = started + performance.timeOrigin - init.timeOrigin
    memory.times[2 * slot + 1] = performance.now() - started
  }
  if (stdioPending()) await flushStdio()
  const { key, bytes, data } = answerOf(id, ok, value, encoded(), side)
  answer({ boot: id, claim: task.claim, key, bytes, data })
  memory.current[cell] = 0
}
