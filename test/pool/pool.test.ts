// PortPool.run(): payloads and results keep structured-clone semantics (with the fast paths for
// numbers, strings and byte arrays), errors keep their name, message, stack, own properties and
// cause, named tasks and async tasks work, and a large batch of tasks comes back complete and
// right.
import { afterEach, describe, expect, it } from 'vitest'
import { MessageChannel } from 'node:worker_threads'
import { TaskModuleError, type PortPool } from '@iocp/core'
import { destroyPools, makePool, sharedCells } from '../fixtures/harness.js'

afterEach(destroyPools)

describe('run(): values', () => {
  it('runs the default export', async () => {
    const pool = makePool({ concurrency: 2 })
    expect(await pool.run(21)).toBe(42)
  })

  it('round-trips every kind of value', async () => {
    const pool = makePool({ concurrency: 2 })
    const values: unknown[] = [
      0,
      -0,
      1.5,
      -123456789.125,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      Infinity,
      -Infinity,
      2 ** 53 + 2,
      '',
      'plain',
      'ünïcödé ✓ 𝄞',
      'x'.repeat(100_000),
      undefined,
      null,
      true,
      false,
      10n ** 30n,
      { a: 1, b: [1, 'two', { three: 3 }], c: null },
      [1, , 3],
      new Map<unknown, unknown>([[1, { x: 1 }]]),
      new Set(['a', 'b']),
      new Date(1_700_000_000_000),
      /ab+c/gi,
      new Float64Array([1.5, -2]),
      new ArrayBuffer(3),
    ]
    for (const value of values) {
      expect(await pool.run(value, { name: 'echo' })).toEqual(value)
    }
    expect(Object.is(await pool.run(-0, { name: 'echo' }), -0)).toBe(true)
    expect(Number.isNaN(await pool.run(NaN, { name: 'echo' }))).toBe(true)
  })

  it('delivers byte arrays as Uint8Array (as structured clone does), and keeps their bytes', async () => {
    const pool = makePool({ concurrency: 2 })
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff)
    expect(await pool.run(bytes, { name: 'typeOf' })).toBe('[object Uint8Array]')
    expect(await pool.run(Buffer.from('buf'), { name: 'typeOf' })).toBe('[object Uint8Array]')
    const back = (await pool.run(bytes, { name: 'echo' })) as Uint8Array
    expect(back).toBeInstanceOf(Uint8Array)
    expect([...back]).toEqual([...bytes])
    expect([...((await pool.run(new Uint8Array(0), { name: 'echo' })) as Uint8Array)]).toEqual([])
    // A view into a larger buffer sends only its own bytes.
    const view = new Uint8Array(bytes.buffer, 10, 5)
    expect([...((await pool.run(view, { name: 'echo' })) as Uint8Array)]).toEqual([10, 11, 12, 13, 14])
  })

  it('unwraps Piscina.move() and copies the moved buffer', async () => {
    const pool = makePool({ concurrency: 1 })
    const bytes = new Uint8Array([7, 8, 9])
    // What Piscina.move(bytes) returns: a wrapper keyed by Piscina's registered symbols.
    const moved = { [Symbol.for('Piscina.transferable')]: bytes.buffer, [Symbol.for('Piscina.valueOf')]: bytes }
    const back = (await pool.run(moved, { name: 'echo' })) as Uint8Array
    expect([...back]).toEqual([7, 8, 9])
  })

  it('transfers a MessagePort in the transferList to the task', async () => {
    const pool = makePool({ concurrency: 1 })
    const { port1, port2 } = new MessageChannel()
    const received = new Promise((resolve) => port1.once('message', resolve))
    expect(await pool.run({ port: port2, value: 14 }, { name: 'viaPort', transferList: [port2] })).toBe('sent')
    expect(await received).toBe(42)
    port1.close()
  })

  it('rejects a payload that cannot be cloned, and a result that cannot be', async () => {
    const pool = makePool({ concurrency: 1 })
    await expect(pool.run({ f() {} } as unknown, { name: 'echo' })).rejects.toThrow(/could not be cloned/)
    await expect(pool.run(0, { name: 'unclonable' })).rejects.toThrow(/could not be cloned/)
    // Both are TypeErrors that say what could not be cloned.
    const payload = await pool.run(() => 1, { name: 'echo' }).catch((e: unknown) => e)
    expect(payload).toBeInstanceOf(TypeError)
    expect(payload).toMatchObject({ message: 'payload cannot be cloned: () => 1 could not be cloned.' })
    const result = await pool.run(0, { name: 'unclonable' }).catch((e: unknown) => e)
    expect(result).toBeInstanceOf(TypeError)
    expect((result as Error).message).toMatch(/^the task's result cannot be cloned: /)
    expect(await pool.run(1)).toBe(2)
  })

  it('re-emits what tasks post on parentPort as a message event', async () => {
    const pool = makePool({ concurrency: 1 })
    const message = new Promise((resolve) => pool.once('message', resolve))
    expect(await pool.run(5, { name: 'postMessageToMain' })).toBe(5)
    expect(await message).toEqual({ from: 'task', x: 5 })
  })

  it('gives tasks the workerData option', async () => {
    const pool = makePool({ concurrency: 1, workerData: { label: 'wd', cells: sharedCells(1) } })
    expect(await pool.run(0, { name: 'data' })).toBe('wd')
  })
})

describe('run(): names', () => {
  it('runs named exports, tells the task its name, and uses options.name as the default', async () => {
    const pool = makePool({ concurrency: 2 })
    expect(await pool.run(0, { name: 'name' })).toBe('name')
    expect(await pool.run('x', { name: 'echo' })).toBe('x')
    expect(await pool.run(3, { name: null })).toBe(6)
    const named = makePool({ concurrency: 1, name: 'name' })
    expect(await named.run(0)).toBe('name')
  })

  it('rejects only that task when the module has no such export', async () => {
    const pool = makePool({ concurrency: 1 })
    const error = await pool.run(0, { name: 'missing' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TaskModuleError)
    expect(error).toMatchObject({ code: 'ERR_IOCP_TASK_MODULE', message: expect.stringContaining("'missing'") })
    expect(await pool.run(2)).toBe(4)
  })

  it('runs tasks in the calling thread id of their worker', async () => {
    const pool = makePool({ concurrency: 1 })
    expect(await pool.run(0, { name: 'thread' })).toBeGreaterThan(0)
  })
})

describe('task modules', () => {
  it('loads a CommonJS module: module.exports and its properties', async () => {
    const pool = makePool({ concurrency: 1, filename: new URL('../fixtures/pool-tasks.cjs', import.meta.url) })
    expect(await pool.run(5)).toBe(15)
    expect(await pool.run(5, { name: 'negate' })).toBe(-5)
  })

  it('rejects every task with TaskModuleError when the module fails to load', async () => {
    const pool = makePool({ concurrency: 1, threads: 2, filename: new URL('../fixtures/pool-broken.mjs', import.meta.url) })
    const error = await pool.run(1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TaskModuleError)
    expect((error as TaskModuleError).cause).toMatchObject({ message: 'this module cannot load' })
    await expect(pool.run(2)).rejects.toBeInstanceOf(TaskModuleError)
    await pool.close()
  })
})

describe('run(): errors', () => {
  async function caught(pool: PortPool, payload: unknown, name = 'fail'): Promise<unknown> {
    return pool.run(payload, { name }).then(
      () => {
        throw new Error('expected a rejection')
      },
      (error: unknown) => error,
    )
  }

  it('keeps the class of built-in errors, the message, the stack and own properties', async () => {
    const pool = makePool({ concurrency: 1 })
    const error = (await caught(pool, { kind: 'range', message: 'too far' })) as RangeError & Record<string, unknown>
    expect(error).toBeInstanceOf(RangeError)
    expect(error.name).toBe('RangeError')
    expect(error.message).toBe('too far')
    expect(error.code).toBe('E_RANGE')
    expect(error.detail).toEqual({ n: 1 })
    expect(error.stack).toContain('pool-tasks.mjs')
  })

  it('keeps the name and fields of a custom error, and its cause', async () => {
    const pool = makePool({ concurrency: 1 })
    const error = (await caught(pool, { kind: 'custom', message: 'bad email' })) as Error & Record<string, unknown>
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('ValidationError')
    expect(error.message).toBe('bad email')
    expect(error.field).toBe('email')
    expect(error.cause).toBeInstanceOf(TypeError)
    expect((error.cause as Error).message).toBe('inner')
  })

  it('keeps the errors of an AggregateError', async () => {
    const pool = makePool({ concurrency: 1 })
    const error = (await caught(pool, { kind: 'aggregate', message: 'many' })) as AggregateError
    expect(error).toBeInstanceOf(AggregateError)
    expect(error.errors.map((e: Error) => e.message)).toEqual(['a', 'b'])
  })

  it('rejects with thrown non-errors as they are', async () => {
    const pool = makePool({ concurrency: 1 })
    expect(await caught(pool, { kind: 'value', value: 42 })).toBe(42)
    expect(await caught(pool, { kind: 'value', value: { code: 7 } })).toEqual({ code: 7 })
    expect(await caught(pool, { kind: 'value', value: undefined })).toBe(undefined)
  })

  it('rejects only the task that threw; its neighbours succeed', async () => {
    const pool = makePool({ concurrency: 2 })
    const outcomes = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => (i % 10 === 3 ? pool.run(`no ${i}`, { name: 'asyncFail' }) : pool.run(i))),
    )
    outcomes.forEach((outcome, i) => {
      if (i % 10 === 3) expect(outcome).toMatchObject({ status: 'rejected', reason: { message: `no ${i}` } })
      else expect(outcome).toEqual({ status: 'fulfilled', value: 2 * i })
    })
  })
})

describe('run(): async tasks', () => {
  it('awaits them, and the results come back right', async () => {
    const pool = makePool({ concurrency: 3, threads: 4 })
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.run({ i }, { name: 'asyncEcho' })))
    expect(results).toEqual(Array.from({ length: 500 }, (_, i) => ({ i })))
  })
})

describe('run(): volume', () => {
  it('runs 10^5 tasks (more than the pool has task slots) and every result is right', async () => {
    const pool = makePool({ concurrency: 4, threads: 6 })
    const count = 100_000
    const promises: Array<Promise<unknown>> = new Array(count)
    for (let i = 0; i < count; i++) {
      // Numbers (no payload bytes), strings (UTF-8 payload) and objects (v8 serialization).
      promises[i] = i % 3 === 0 ? pool.run(i) : i % 3 === 1 ? pool.run(`s${i}`, { name: 'echo' }) : pool.run({ i }, { name: 'echo' })
    }
    const results = await Promise.all(promises)
    for (let i = 0; i < count; i++) {
      const expected = i % 3 === 0 ? 2 * i : i % 3 === 1 ? `s${i}` : { i }
      if (i % 3 === 2) expect((results[i] as { i: number }).i).toBe(i)
      else expect(results[i]).toBe(expected)
    }
    const stats = pool.stats()
    expect(stats.completed).toBe(count)
    expect(stats.inFlight).toBe(0)
    expect(pool.completed).toBe(count)
    expect(stats.runTime.count).toBe(count)
    expect(stats.waitTime.count).toBe(count)
    expect(pool.histogram.runTime.max).toBeGreaterThan(0)
    expect(pool.utilization).toBeGreaterThan(0)
    expect(pool.utilization).toBeLessThanOrEqual(1)
  })
})
