/**
 * Every error a {@link PortPool} raises, made in one place (as errors.ts does for the port).
 *
 * The pool's own conditions have classes with stable `code`s, listed in {@link PoolErrorCode}.
 * Bad options and arguments are plain `TypeError` / `RangeError` from the port's factory table
 * ({@link Errors}), carrying Node's codes, so messages read the same across the package:
 * `options.maxThreads must be a positive integer, got -1`.
 */
import { describe } from '../../errors.js'

/** Stable codes of the pool's errors, for `err.code === PoolErrorCode.WorkerDied` checks. */
export const PoolErrorCode = {
  /** {@link AbortError}: the task's `signal` aborted. The same code as Node's own `AbortError`. */
  Aborted: 'ABORT_ERR',
  /** {@link PoolClosedError}: the pool is closed, closing, or was destroyed. */
  PoolClosed: 'ERR_IOCP_POOL_CLOSED',
  /** {@link QueueFullError}: `maxQueue` tasks are already waiting. */
  QueueFull: 'ERR_IOCP_QUEUE_FULL',
  /** {@link WorkerDiedError}: the worker thread that held the task (or packet) died. */
  WorkerDied: 'ERR_IOCP_WORKER_DIED',
  /** {@link TaskModuleError}: the task module did not load, or lacks the task function. */
  TaskModule: 'ERR_IOCP_TASK_MODULE',
  /** An option names a Piscina feature that PortPool does not have (a `TypeError`). */
  UnsupportedOption: 'ERR_IOCP_UNSUPPORTED_OPTION',
} as const

/** One of the values of {@link PoolErrorCode}. */
export type PoolErrorCode = (typeof PoolErrorCode)[keyof typeof PoolErrorCode]

/**
 * The task's `signal` aborted. A queued task never runs; a running task's promise rejects at
 * once, while the task itself sees the abort through the `signal` of its {@link TaskContext}
 * (cooperative: no worker is killed). Same shape as Piscina's `AbortError`: the signal's reason
 * is the `cause`.
 */
export class AbortError extends Error {
  /** Always `'ABORT_ERR'`, as Node's own abort errors. */
  readonly code: typeof PoolErrorCode.Aborted = PoolErrorCode.Aborted
  override readonly name = 'AbortError'

  constructor(reason?: unknown) {
    super('The task has been aborted', { cause: reason })
  }
}

/**
 * The pool no longer takes tasks: `run()` / `post()` after {@link PortPool.close} or
 * {@link PortPool.destroy}; also the rejection of the tasks that `destroy()` (or a `close()`
 * whose `closeTimeout` expired) ended before they finished.
 */
export class PoolClosedError extends Error {
  /** Always `'ERR_IOCP_POOL_CLOSED'`. */
  readonly code: typeof PoolErrorCode.PoolClosed = PoolErrorCode.PoolClosed
  override readonly name = 'PoolClosedError'
}

/** `run()` found `maxQueue` tasks already waiting for a thread. Nothing was queued. */
export class QueueFullError extends Error {
  /** Always `'ERR_IOCP_QUEUE_FULL'`. */
  readonly code: typeof PoolErrorCode.QueueFull = PoolErrorCode.QueueFull
  override readonly name = 'QueueFullError'
  /** The pool's `maxQueue`. */
  readonly maxQueue: number

  constructor(message: string, maxQueue: number) {
    super(message)
    this.maxQueue = maxQueue
  }
}

/**
 * The worker thread that held this task died before the task finished: the task called
 * `process.exit()`, an error escaped an async task, or the worker exceeded its
 * `resourceLimits`. Only the tasks that thread held are rejected; the worker is replaced and
 * every other task runs. The task may have run partly; it is never run again.
 *
 * Also the pool's failure when no worker can start: after 3 failed starts in a row (a thread
 * that could not be created, or died before its loop ran), every pending and later task
 * rejects with it; `threadId` and `exitCode` are those of the last failed start (0 and -1 if
 * it never had a thread), `cause` its error. The message says so ("could not start").
 */
export class WorkerDiedError extends Error {
  /** Always `'ERR_IOCP_WORKER_DIED'`. */
  readonly code: typeof PoolErrorCode.WorkerDied = PoolErrorCode.WorkerDied
  override readonly name = 'WorkerDiedError'
  /** The `threadId` of the worker that died. */
  readonly threadId: number
  /** The worker's exit code. */
  readonly exitCode: number

  constructor(message: string, threadId: number, exitCode: number, cause: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.threadId = threadId
    this.exitCode = exitCode
  }
}

/**
 * The task module could not be used: it failed to load (every pending and later task rejects
 * with this error, the cause attached), or it exports no task function of the requested name
 * (only that task rejects).
 */
export class TaskModuleError extends Error {
  /** Always `'ERR_IOCP_TASK_MODULE'`. */
  readonly code: typeof PoolErrorCode.TaskModule = PoolErrorCode.TaskModule
  override readonly name = 'TaskModuleError'
  /** The task module's path. */
  readonly filename: string

  constructor(message: string, filename: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.filename = filename
  }
}

/** A `TypeError` carrying {@link PoolErrorCode.UnsupportedOption}. */
function unsupported(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: PoolErrorCode.UnsupportedOption })
}

/** The pool's error-factory table: messages and codes stay in one greppable place. */
export const PoolErrors = {
  // Each message opens with what Piscina 5 says for the same condition (so logs and habits carry
  // over), then says ours: the pool's detail and what happened to the task.
  aborted: (reason: unknown): AbortError => new AbortError(reason),
  /** `close({ force: true })` took back a task that had not started (Piscina: an AbortError, cause 'pool is closed'). */
  closedForce: (): AbortError => new AbortError('pool is closed'),
  closed: (): PoolClosedError =>
    new PoolClosedError('The task has been aborted (queue is being terminated): the pool is closed, it takes no new tasks or packets'),
  destroyed: (): PoolClosedError =>
    new PoolClosedError('Terminating worker thread: the pool was destroyed before this task finished'),
  closeTimedOut: (closeTimeout: number): PoolClosedError =>
    new PoolClosedError(`Close operation timed out: closeTimeout (${closeTimeout} ms) expired before this task finished`),
  queueFull: (maxQueue: number): QueueFullError =>
    new QueueFullError(`Task queue is at limit (maxQueue ${maxQueue}); the task was not queued`, maxQueue),
  workerDied: (threadId: number, exitCode: number, cause: unknown): WorkerDiedError => {
    const why =
      cause instanceof Error
        ? `${cause.name}: ${cause.message}`
        : cause !== undefined
          ? `threw ${describe(cause)}`
          : `exited with code ${exitCode}`
    return new WorkerDiedError(
      `The worker thread (threadId ${threadId}) holding this task died (${why}); it was replaced`,
      threadId,
      exitCode,
      cause,
    )
  },
  /**
   * A worker failed to start. `attempts` > 0: the last of that many failed starts in a row
   * (the pool gives up); 0: another start replaces it.
   */
  startFailed: (threadId: number, exitCode: number, cause: unknown, attempts: number): WorkerDiedError => {
    const who = threadId > 0 ? `The worker thread (threadId ${threadId})` : 'A worker thread'
    const why =
      cause instanceof Error
        ? `${cause.name}: ${cause.message}`
        : cause !== undefined
          ? `threw ${describe(cause)}`
          : exitCode >= 0
            ? `exited with code ${exitCode}`
            : 'exited'
    const outcome =
      attempts > 0
        ? `no worker could start (${attempts} failed starts in a row); the pool takes no more tasks`
        : 'another is starting'
    return new WorkerDiedError(`${who} could not start (${why}); ${outcome}`, threadId, exitCode, cause)
  },
  /** `new Worker` refused the option `name` (what it says is the cause). */
  workerOption: (name: string, cause: unknown): TypeError =>
    Object.assign(
      new TypeError(
        `options.${name} was refused by worker_threads: ${cause instanceof Error ? cause.message : describe(cause)}`,
        { cause },
      ),
      { code: 'ERR_INVALID_ARG_VALUE' },
    ),
  /** A payload or a result that structured clone refuses (a function, a symbol...). */
  notClonable: (what: string, cause: unknown): TypeError =>
    Object.assign(
      new TypeError(`${what} cannot be cloned: ${cause instanceof Error ? cause.message : describe(cause)}`, { cause }),
      { code: 'ERR_INVALID_ARG_VALUE' },
    ),
  moduleFailed: (filename: string, cause: unknown): TaskModuleError =>
    new TaskModuleError(`The task module ${filename} failed to load`, filename, cause),
  noTask: (filename: string, name: string): TaskModuleError =>
    new TaskModuleError(`The task module ${filename} exports no task function named '${name}'`, filename),
  noPacketHandler: (filename: string): TaskModuleError =>
    new TaskModuleError(
      `The task module ${filename} exports no packet handler ('onPacket') for a raw packet`,
      filename,
    ),
  tooManyNames: (limit: number): RangeError =>
    new RangeError(`options.name: a pool supports at most ${limit} distinct task names`),
  unknownOption: (name: string): TypeError =>
    unsupported(`options.${name} is not a PortPool option`),
  unknownRunOption: (name: string): TypeError =>
    unsupported(`options.${name} is not an option of run() (they are name, signal, transferList)`),
  runFilename: (): TypeError =>
    unsupported(
      "options.filename is not supported by PortPool.run(): a pool's tasks all come from its own task module. Export the function from that module and pass its name (options.name), or create another PortPool for that file",
    ),
  closeOptions: (value: unknown): TypeError =>
    Object.assign(new TypeError(`options must be an object like { force: boolean }, got ${describe(value)}`), {
      code: 'ERR_INVALID_ARG_TYPE',
    }),
  unknownLimit: (name: string, known: readonly string[]): TypeError =>
    unsupported(`options.resourceLimits.${name} is not a resource limit (they are ${known.join(', ')})`),
  unsupportedOption: (name: string, why: string): TypeError =>
    unsupported(`options.${name} is a Piscina option that PortPool does not support: ${why}`),
  conflict: (message: string): RangeError =>
    Object.assign(new RangeError(message), { code: 'ERR_INVALID_ARG_VALUE' }),
  reservedKey: (key: number): RangeError =>
    Object.assign(
      new RangeError(
        `key must be below 2^52 as a number (keys from 2^52 up are the pool's task packets; pass a bigint instead), got ${describe(key)}`,
      ),
      { code: 'ERR_OUT_OF_RANGE' },
    ),
} as const
