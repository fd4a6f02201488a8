// The constructor refuses every bad option with an error that names it: wrong types, values out
// of range, contradictions (naming both options), Piscina options that mean nothing here, and
// unknown ones; run() rejects bad run options. Defaults are applied as documented. Back-pressure:
// maxQueue, needsDrain and the 'drain' / 'needsDrain' events.
import { afterEach, describe, expect, it } from 'vitest'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { PortPool, QueueFullError, type PortPoolOptions } from '@iocp/core'
import { TASKS, destroyPools, makePool, open, reach, sharedCells } from '../fixtures/harness.js'

afterEach(destroyPools)

function construct(options: Record<string, unknown>): () => PortPool {
  return () => new PortPool({ filename: TASKS, ...options } as PortPoolOptions)
}

describe('constructor options', () => {
  it.each([
    [{ filename: undefined }, TypeError, /options\.filename must be an absolute path or a file: URL/],
    [{ filename: 'relative/task.mjs' }, TypeError, /options\.filename must be an absolute path/],
    [{ filename: '/no/such/task.mjs' }, TypeError, /options\.filename must be an existing file/],
    [{ filename: new URL('https://example.com/task.mjs') }, TypeError, /options\.filename/],
    [{ concurrency: 0 }, RangeError, /options\.concurrency must be a positive integer, got 0/],
    [{ concurrency: 1.5 }, RangeError, /options\.concurrency must be a positive integer, got 1\.5/],
    [{ concurrency: '2' }, TypeError, /options\.concurrency must be a positive integer, got "2"/],
    [{ threads: -1 }, RangeError, /options\.threads must be a positive integer/],
    [{ minThreads: -1 }, RangeError, /options\.minThreads must be a non-negative integer/],
    [{ concurrentTasksPerWorker: 0 }, RangeError, /options\.concurrentTasksPerWorker must be an integer in \[1, 1024\]/],
    [{ abortTimeout: -1 }, RangeError, /options\.abortTimeout must be a non-negative number of milliseconds or Infinity/],
    [{ atomics: 'often' }, TypeError, /options\.atomics must be 'sync', 'async' or 'disabled'/],
    [{ useAtomics: 1 }, TypeError, /options\.useAtomics must be a boolean/],
    [{ maxThreads: NaN }, RangeError, /options\.maxThreads must be a positive integer/],
    [{ idleTimeout: -5 }, RangeError, /options\.idleTimeout must be a non-negative number/],
    [{ maxQueue: -1 }, RangeError, /options\.maxQueue must be a non-negative integer, Infinity or 'auto'/],
    [{ maxQueue: 'lots' }, TypeError, /options\.maxQueue/],
    [{ closeTimeout: 'soon' }, TypeError, /options\.closeTimeout must be a non-negative number/],
    [{ recordTiming: 1 }, TypeError, /options\.recordTiming must be a boolean/],
    [{ name: 42 }, TypeError, /options\.name must be a non-empty string/],
    [{ resourceLimits: 5 }, TypeError, /options\.resourceLimits must be an object/],
    [{ env: 'x' }, TypeError, /options\.env must be an object or worker_threads\.SHARE_ENV/],
    [{ argv: 'x' }, TypeError, /options\.argv must be an array/],
    [{ execArgv: [1] }, TypeError, /options\.execArgv must be an array of strings/],
    [{ trackUnmanagedFds: 'yes' }, TypeError, /options\.trackUnmanagedFds must be a boolean/],
    [{ filename: fileURLToPath(new URL('../fixtures/', import.meta.url)) }, TypeError, /options\.filename must be an existing file/],
    [{ filename: 'file://remote-host/task.mjs' }, TypeError, /options\.filename must be (an absolute path or a file: URL|an existing file)/],
    [{ niceIncrement: -100 }, RangeError, /options\.niceIncrement must be (a non-negative integer|an integer in \[-20, 19\]), got -100/],
    [{ niceIncrement: 1.5 }, RangeError, /options\.niceIncrement must be .*integer.*, got 1\.5/],
    [{ niceIncrement: '1' }, TypeError, /options\.niceIncrement must be .*integer/],
    [{ resourceLimits: { maxOldGenerationSizeMb: -1 } }, RangeError, /options\.resourceLimits\.maxOldGenerationSizeMb must be a positive number of megabytes, got -1/],
    [{ resourceLimits: { stackSizeMb: NaN } }, RangeError, /options\.resourceLimits\.stackSizeMb must be a positive number/],
    [{ resourceLimits: { maxYoungGenerationSizeMb: '8' } }, TypeError, /options\.resourceLimits\.maxYoungGenerationSizeMb must be a positive number/],
    [{ resourceLimits: { maxHeapMb: 8 } }, TypeError, /options\.resourceLimits\.maxHeapMb is not a resource limit/],
    [{ env: { PATH: Symbol('p') } }, TypeError, /options\.env\.PATH must be a string/],
    [{ execArgv: ['--no-such-node-flag'] }, TypeError, /options\.execArgv was refused by worker_threads: .*--no-such-node-flag/],
    [{ workerData: { f() {} } }, TypeError, /options\.workerData was refused by worker_threads: .*could not be cloned/],
  ])('refuses %o', (options, type, message) => {
    expect(construct(options)).toThrow(type)
    expect(construct(options)).toThrow(message)
  })

  it.each([
    [{ threads: 4, maxThreads: 4 }, /options\.threads cannot be combined with options\.maxThreads/],
    [{ threads: 4, minThreads: 2 }, /options\.threads cannot be combined with options\.minThreads/],
    [{ minThreads: 5, maxThreads: 2 }, /options\.minThreads \(5\) must not exceed options\.maxThreads \(2\)/],
    [{ concurrency: 8, threads: 4 }, /options\.concurrency \(8\) must not exceed the number of threads \(options\.threads = 4\)/],
    [{ concurrency: 3, maxThreads: 2 }, /options\.concurrency \(3\) must not exceed the number of threads \(options\.maxThreads = 2\)/],
  ])('refuses the contradiction %o, naming both options', (options, message) => {
    expect(construct(options)).toThrow(RangeError)
    expect(construct(options)).toThrow(message)
  })

  it.each([
    ['taskQueue', {}],
    ['loadBalancer', () => null],
    ['workerHistogram', true],
    ['stricterFIFO', true],
  ])('refuses the Piscina option %s, saying why', (name, value) => {
    expect(construct({ [name]: value })).toThrow(TypeError)
    expect(construct({ [name]: value })).toThrow(new RegExp(`options\\.${name} is a Piscina option that PortPool does not support: .+`))
  })

  it('refuses an unknown option (a typo)', () => {
    expect(construct({ maxThread: 4 })).toThrow(/options\.maxThread is not a PortPool option/)
  })

  it('refuses a missing options object', () => {
    expect(() => new PortPool(undefined as unknown as PortPoolOptions)).toThrow(TypeError)
  })

  it('applies the defaults', () => {
    const pool = makePool({ concurrency: 2 })
    expect(pool.options).toMatchObject({
      filename: fileURLToPath(TASKS),
      name: 'default',
      concurrency: 2,
      minThreads: 3,
      maxThreads: 3,
      idleTimeout: 0,
      maxQueue: Infinity,
      closeTimeout: 30_000,
      recordTiming: true,
    })
    const cores = availableParallelism()
    const byDefault = makePool({})
    expect(byDefault.options.concurrency).toBe(cores)
    expect(byDefault.options.maxThreads).toBe(Math.max(cores + 1, Math.ceil(cores * 1.5)))
    expect(makePool({ maxThreads: 2 }).options).toMatchObject({ concurrency: Math.min(cores, 2), maxThreads: 2 })
    expect(makePool({ concurrency: 1, maxQueue: 'auto', threads: 3 }).options.maxQueue).toBe(9)
    expect(makePool({ concurrency: 1, filename: fileURLToPath(TASKS) }).options.filename).toBe(fileURLToPath(TASKS))
  })
})

describe('run() options', () => {
  it.each([
    [null, /options must be an object or undefined/],
    [{ name: 5 }, /options\.name must be a non-empty string/],
    [{ signal: {} }, /options\.signal must be an AbortSignal or undefined/],
    [{ transferList: 'x' }, /options\.transferList must be an array/],
    [{ filename: '/x.mjs' }, /options\.filename is not supported by PortPool\.run\(\).*pass its name \(options\.name\), or create another PortPool for that file/],
    [{ nmae: 'x' }, /options\.nmae is not an option of run\(\)/],
  ])('rejects %o (never throws)', async (options, message) => {
    const pool = makePool({ concurrency: 1 })
    let promise: Promise<unknown> | undefined
    expect(() => {
      promise = pool.run(1, options as never)
    }).not.toThrow()
    await expect(promise).rejects.toThrow(message)
  })
})

describe('back-pressure', () => {
  it('rejects run() beyond maxQueue with QueueFullError; needsDrain and drain follow the load', async () => {
    const cells = sharedCells(2)
    const pool = makePool({ concurrency: 1, threads: 1, maxQueue: 3, workerData: { cells } })
    const events: string[] = []
    pool.on('needsDrain', () => events.push('needsDrain'))
    pool.on('drain', () => events.push('drain'))
    // 1. One running task (held by the gate) and three queued: capacity (1 + 3) reached.
    const running = pool.run({ started: 0, gate: 1 }, { name: 'gated' })
    await reach(cells, 0, 1)
    const queued = [pool.run(1), pool.run(2), pool.run(3)]
    expect(pool.queueSize).toBe(3)
    expect(pool.needsDrain).toBe(true)
    expect(events).toEqual(['needsDrain'])
    // 2. The fourth queued task is refused, and nothing is queued for it.
    const error = await pool.run(4).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(QueueFullError)
    expect(error).toMatchObject({ code: 'ERR_IOCP_QUEUE_FULL', maxQueue: 3 })
    expect(pool.queueSize).toBe(3)
    // 3. Released, everything drains.
    open(cells, 1)
    expect(await running).toBe('released')
    expect(await Promise.all(queued)).toEqual([2, 4, 6])
    expect(pool.needsDrain).toBe(false)
    expect(events).toEqual(['needsDrain', 'drain'])
  })
})
