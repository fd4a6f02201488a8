/**
 * The options of {@link PortPool}: what each means, its default, and their validation. Every
 * bad option is refused in the constructor with an error that names it; so are options that
 * contradict each other, Piscina options that have no meaning for a pool driven by a
 * completion port, and options nobody has heard of (a typo would otherwise be silently ignored).
 */
import { statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ResourceLimits } from 'node:worker_threads'
import { SHARE_ENV } from 'node:worker_threads'
import { Errors } from '../../errors.js'
import { PoolErrors } from '../shared/errors.js'
import { MAX_THREADS } from '../../shared.js'
import { validateInteger } from '../../validate.js'

/** Options of the {@link PortPool} constructor. Only `filename` is required. */
export interface PortPoolOptions {
  /**
   * The task module: an absolute path or a `file:` URL (string or `URL`) of an ES module or a
   * CommonJS module. Its default export (or `module.exports`) is the task function, its other
   * exports are named tasks ({@link RunOptions.name}), and an export named `onPacket` handles
   * raw packets ({@link PortPool.post}). Loaded once per worker, as Piscina loads it.
   */
  filename: string | URL
  /**
   * The task that `run()` calls when it is given no name.
   * @default 'default'
   */
  name?: string
  /**
   * The most tasks that run at once across the whole pool: the task port's concurrency. A task
   * inside `ctx.blocking()` does not count, so another may start meanwhile.
   * @default os.availableParallelism(), at most the number of threads
   */
  concurrency?: number
  /**
   * The number of worker threads, fixed (sets both `minThreads` and `maxThreads`). More
   * threads than `concurrency` let a task that blocks (in `ctx.blocking()`) hand its place to
   * another. Cannot be combined with `minThreads` / `maxThreads`.
   * @default max(concurrency + 1, ceil(1.5 * concurrency))
   */
  threads?: number
  /**
   * The fewest worker threads kept running (Piscina's `minThreads`). 0 scales to zero: with no
   * worker, a `run()` or `post()` starts one, and workers leave after `idleTimeout` without work.
   * @default min(maxThreads, concurrency) if `maxThreads` is given, else `maxThreads`
   */
  minThreads?: number
  /**
   * The most worker threads (Piscina's `maxThreads`). Threads above `minThreads` start when a
   * task finds no idle worker, and leave after `idleTimeout` without work.
   * @default the `threads` default
   */
  maxThreads?: number
  /**
   * How long (ms) a thread above `minThreads` may wait for work before it exits. `Infinity`
   * keeps them.
   * @default 0 (as Piscina: it exits as soon as it finds nothing to do)
   */
  idleTimeout?: number
  /**
   * The most tasks that may wait for a thread; `run()` beyond it rejects with
   * {@link QueueFullError}. `'auto'` is `maxThreads ** 2`, as in Piscina.
   * @default Infinity
   */
  maxQueue?: number | 'auto'
  /**
   * Tasks one worker runs at once (Piscina's option): while an async task of a worker awaits,
   * that worker takes more tasks, up to this many of its own, and their awaits interleave. A
   * worker that only awaits does not count under `concurrency`, which bounds the workers running
   * JavaScript at once; so the tasks in flight are at most `maxThreads × concurrentTasksPerWorker`.
   * With 1, an async task holds its worker and its place under `concurrency` until it settles.
   * @default 1
   */
  concurrentTasksPerWorker?: number
  /**
   * How long (ms) a running task may go on after its `signal` aborted. Abort is cooperative
   * first: the task's promise rejects at once and the task sees `ctx.signal` fire. A task that
   * has not returned once this grace period is over has its worker terminated (as Piscina
   * does at once); the packets that worker held are recovered, nothing else is lost, and a new
   * worker replaces it. `Infinity` never terminates (purely cooperative).
   * @default 1000
   */
  abortTimeout?: number
  /**
   * Accepted for Piscina compatibility and ignored: a PortPool's idle workers wait in the
   * completion port, which has its own wake-up, not in `Atomics.wait`.
   */
  atomics?: 'sync' | 'async' | 'disabled'
  /** Piscina's older spelling of {@link PortPoolOptions.atomics}; accepted and ignored. */
  useAtomics?: boolean
  /**
   * How long (ms) {@link PortPool.close} waits for queued and running tasks before it ends
   * them as {@link PortPool.destroy} does.
   * @default 30000
   */
  closeTimeout?: number
  /**
   * Records each task's wait and run time in the pool's histograms.
   * @default true
   */
  recordTiming?: boolean
  /** Per-worker V8 heap limits (`new Worker`'s `resourceLimits`). A worker that exceeds them dies; see {@link WorkerDiedError}. */
  resourceLimits?: ResourceLimits
  /** The workers' `process.env` (an object, or `worker_threads.SHARE_ENV`). */
  env?: NodeJS.ProcessEnv | typeof SHARE_ENV
  /** Appended to `process.argv` in the workers. */
  argv?: unknown[]
  /** Node.js options for the workers. */
  execArgv?: string[]
  /** Cloned into each worker, where it is `workerData` (from `node:worker_threads` or `piscina`). */
  workerData?: unknown
  /** Workers close the file descriptors they opened when they exit. @default true */
  trackUnmanagedFds?: boolean
  /** Lowers the workers' priority (needs the optional `@napi-rs/nice`, as in Piscina). @default 0 */
  niceIncrement?: number
}

/** The options in force, every default applied: {@link PortPool.options}. */
export interface ResolvedPoolOptions {
  readonly filename: string
  readonly name: string
  readonly concurrency: number
  readonly minThreads: number
  readonly maxThreads: number
  readonly idleTimeout: number
  readonly maxQueue: number
  readonly concurrentTasksPerWorker: number
  readonly abortTimeout: number
  readonly closeTimeout: number
  readonly recordTiming: boolean
  readonly resourceLimits: ResourceLimits | undefined
  readonly env: NodeJS.ProcessEnv | typeof SHARE_ENV | undefined
  readonly argv: unknown[] | undefined
  readonly execArgv: string[] | undefined
  readonly workerData: unknown
  readonly trackUnmanagedFds: boolean
  readonly niceIncrement: number
}

/** Piscina options that a completion-port pool has no use for, and why. */
const UNSUPPORTED: Record<string, string> = {
  taskQueue: "the queue is the completion port's FIFO",
  loadBalancer: 'the completion port releases waiting workers itself (LIFO, under the concurrency limit)',
  workerHistogram: 'per-worker histograms are not kept; see pool.stats()',
  stricterFIFO: 'dispatch is always FIFO',
}

const KNOWN = new Set([
  'filename',
  'name',
  'concurrency',
  'threads',
  'minThreads',
  'maxThreads',
  'idleTimeout',
  'maxQueue',
  'closeTimeout',
  'concurrentTasksPerWorker',
  'abortTimeout',
  'atomics',
  'useAtomics',
  'recordTiming',
  'resourceLimits',
  'env',
  'argv',
  'execArgv',
  'workerData',
  'trackUnmanagedFds',
  'niceIncrement',
])

/** The most tasks one worker may run at once. */
const MAX_PER_WORKER = 1024
/** The most task cells (threads × tasks per worker) a pool's shared memory holds. */
const MAX_TASK_CELLS = 0x40_0000

function positive(name: string, value: unknown): number {
  validateInteger(name, value, 1, MAX_THREADS, 'a positive integer')
  return value
}

function milliseconds(name: string, value: unknown): number {
  const expected = 'a non-negative number of milliseconds or Infinity'
  if (typeof value !== 'number') throw Errors.invalidType(name, expected, value)
  if (!(value >= 0)) throw Errors.outOfRange(name, expected, value)
  return value
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw Errors.invalidType(name, 'a boolean', value)
  return value
}

function filenameOf(value: unknown): string {
  const expected = 'an absolute path or a file: URL of the task module'
  let path: string
  const fromURL = (url: URL | string): string => {
    try {
      return fileURLToPath(url)
    } catch {
      // A file: URL with a host, or an encoded '/': not a path on this platform.
      throw Errors.invalidValue('options.filename', expected, String(url))
    }
  }
  if (value instanceof URL) {
    if (value.protocol !== 'file:') throw Errors.invalidValue('options.filename', expected, value.href)
    path = fromURL(value)
  } else if (typeof value === 'string') {
    if (value.startsWith('file:')) path = fromURL(value)
    else if (isAbsolute(value)) path = value
    else throw Errors.invalidValue('options.filename', expected, value)
  } else {
    throw Errors.invalidType('options.filename', expected, value)
  }
  if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) {
    throw Errors.invalidValue('options.filename', 'an existing file', path)
  }
  return path
}

/** The keys of `new Worker`'s `resourceLimits`. */
const RESOURCE_LIMITS = ['maxYoungGenerationSizeMb', 'maxOldGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb']

function resourceLimitsOf(value: unknown): ResourceLimits | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object') throw Errors.invalidType('options.resourceLimits', 'an object', value)
  const limits = value as Record<string, unknown>
  for (const key of Object.keys(limits)) {
    const name = `options.resourceLimits.${key}`
    if (!RESOURCE_LIMITS.includes(key)) throw PoolErrors.unknownLimit(key, RESOURCE_LIMITS)
    const limit = limits[key]
    if (limit === undefined) continue
    if (typeof limit !== 'number') throw Errors.invalidType(name, 'a positive number of megabytes', limit)
    if (!(limit > 0 && limit < Infinity)) throw Errors.outOfRange(name, 'a positive number of megabytes', limit)
  }
  return limits as ResourceLimits
}

function envOf(value: unknown): NodeJS.ProcessEnv | typeof SHARE_ENV | undefined {
  if (value === undefined || value === SHARE_ENV) return value
  if (value === null || typeof value !== 'object') {
    throw Errors.invalidType('options.env', 'an object or worker_threads.SHARE_ENV', value)
  }
  const env = value as Record<string, unknown>
  for (const key of Object.keys(env)) {
    // The worker's process.env holds strings: each value is converted, which a symbol refuses.
    if (typeof env[key] === 'symbol') throw Errors.invalidType(`options.env.${key}`, 'a string', env[key])
  }
  return env as NodeJS.ProcessEnv
}

/**
 * Validates `options` and applies the defaults.
 * @throws {TypeError} an option has the wrong type, is unknown, or is a Piscina option that
 *   PortPool does not support (the message names it and says why).
 * @throws {RangeError} an option is out of range, or contradicts another (both are named).
 */
export function resolvePoolOptions(options: unknown): ResolvedPoolOptions {
  if (options === null || typeof options !== 'object') {
    throw Errors.invalidType('options', 'an object with at least `filename`', options)
  }
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (KNOWN.has(key)) continue
    const why = UNSUPPORTED[key]
    throw why !== undefined ? PoolErrors.unsupportedOption(key, why) : PoolErrors.unknownOption(key)
  }

  const filename = filenameOf(o.filename)
  const name = o.name === undefined ? 'default' : o.name
  if (typeof name !== 'string' || name === '') {
    throw Errors.invalidType('options.name', 'a non-empty string', name)
  }

  const threads = o.threads === undefined ? undefined : positive('options.threads', o.threads)
  let minThreads: number | undefined
  if (o.minThreads !== undefined) {
    validateInteger('options.minThreads', o.minThreads, 0, MAX_THREADS, 'a non-negative integer')
    minThreads = o.minThreads
  }
  let maxThreads = o.maxThreads === undefined ? undefined : positive('options.maxThreads', o.maxThreads)
  let concurrency = o.concurrency === undefined ? undefined : positive('options.concurrency', o.concurrency)

  if (threads !== undefined) {
    if (minThreads !== undefined || maxThreads !== undefined) {
      throw PoolErrors.conflict(
        `options.threads cannot be combined with options.${minThreads !== undefined ? 'minThreads' : 'maxThreads'} (threads sets both)`,
      )
    }
    minThreads = maxThreads = threads
  }
  if (minThreads !== undefined && maxThreads !== undefined && minThreads > maxThreads) {
    throw PoolErrors.conflict(
      `options.minThreads (${minThreads}) must not exceed options.maxThreads (${maxThreads})`,
    )
  }
  const cap = maxThreads ?? Infinity
  concurrency ??= Math.max(1, Math.min(availableParallelism(), cap))
  if (concurrency > cap) {
    throw PoolErrors.conflict(
      `options.concurrency (${concurrency}) must not exceed the number of threads (${threads !== undefined ? 'options.threads' : 'options.maxThreads'} = ${cap})`,
    )
  }
  const defaultThreads = Math.max(concurrency + 1, Math.ceil(concurrency * 1.5))
  if (maxThreads === undefined) maxThreads = Math.max(defaultThreads, minThreads ?? 0)
  else minThreads ??= Math.min(maxThreads, Math.max(concurrency, 1))
  minThreads ??= maxThreads

  const idleTimeout = o.idleTimeout === undefined ? 0 : milliseconds('options.idleTimeout', o.idleTimeout)
  let maxQueue = Infinity
  if (o.maxQueue === 'auto') {
    maxQueue = maxThreads ** 2
  } else if (o.maxQueue !== undefined && o.maxQueue !== Infinity) {
    validateInteger('options.maxQueue', o.maxQueue, 0, Number.MAX_SAFE_INTEGER, "a non-negative integer, Infinity or 'auto'")
    maxQueue = o.maxQueue
  }
  const closeTimeout = o.closeTimeout === undefined ? 30_000 : milliseconds('options.closeTimeout', o.closeTimeout)
  const abortTimeout = o.abortTimeout === undefined ? 1000 : milliseconds('options.abortTimeout', o.abortTimeout)
  let concurrentTasksPerWorker = 1
  if (o.concurrentTasksPerWorker !== undefined) {
    validateInteger('options.concurrentTasksPerWorker', o.concurrentTasksPerWorker, 1, MAX_PER_WORKER, `an integer in [1, ${MAX_PER_WORKER}]`)
    concurrentTasksPerWorker = o.concurrentTasksPerWorker
  }
  if ((2 * maxThreads + 1) * concurrentTasksPerWorker > MAX_TASK_CELLS) {
    throw PoolErrors.conflict(
      `options.concurrentTasksPerWorker (${concurrentTasksPerWorker}) times options.maxThreads (${maxThreads}) must not exceed ${MAX_TASK_CELLS / 2}`,
    )
  }
  if (o.atomics !== undefined && o.atomics !== 'sync' && o.atomics !== 'async' && o.atomics !== 'disabled') {
    throw Errors.invalidValue('options.atomics', "'sync', 'async' or 'disabled'", o.atomics)
  }
  if (o.useAtomics !== undefined) boolean('options.useAtomics', o.useAtomics)
  const recordTiming = o.recordTiming === undefined ? true : boolean('options.recordTiming', o.recordTiming)
  const trackUnmanagedFds =
    o.trackUnmanagedFds === undefined ? true : boolean('options.trackUnmanagedFds', o.trackUnmanagedFds)

  const resourceLimits = resourceLimitsOf(o.resourceLimits)
  const env = envOf(o.env)
  const argv = o.argv
  if (argv !== undefined && !Array.isArray(argv)) throw Errors.invalidType('options.argv', 'an array', argv)
  const execArgv = o.execArgv
  if (execArgv !== undefined && (!Array.isArray(execArgv) || execArgv.some((a) => typeof a !== 'string'))) {
    throw Errors.invalidType('options.execArgv', 'an array of strings', execArgv)
  }
  const niceIncrement = o.niceIncrement === undefined ? 0 : o.niceIncrement
  // As Piscina: only Windows lets a process raise its threads' priority.
  if (process.platform === 'win32') {
    validateInteger('options.niceIncrement', niceIncrement, -20, 19, 'an integer in [-20, 19]')
  } else {
    validateInteger('options.niceIncrement', niceIncrement, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer')
  }

  return Object.freeze({
    filename,
    name,
    concurrency,
    minThreads,
    maxThreads,
    idleTimeout,
    maxQueue,
    concurrentTasksPerWorker,
    abortTimeout,
    closeTimeout,
    recordTiming,
    resourceLimits,
    env,
    argv: argv as unknown[] | undefined,
    execArgv: execArgv as string[] | undefined,
    workerData: o.workerData,
    trackUnmanagedFds,
    niceIncrement,
  })
}
