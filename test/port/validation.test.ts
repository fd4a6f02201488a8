// Every bad argument of every method throws a TypeError (wrong type) or a RangeError (wrong
// value) whose message names the argument, and nothing reaches the port: stats().posted and
// stats().queued do not move.
import { afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, PortClosedError, PortFullError } from '@iocp/core'

const ports: CompletionPort[] = []
function makePort(options?: ConstructorParameters<typeof CompletionPort>[0]): CompletionPort {
  const port = new CompletionPort(options)
  ports.push(port)
  return port
}
afterEach(() => {
  for (const port of ports.splice(0)) port.close()
})

type ErrorClass = typeof TypeError | typeof RangeError

/** Runs `call`, expects `kind` with a message that starts with `name`, and nothing posted. */
function expectRejected(port: CompletionPort, call: () => unknown, kind: ErrorClass, name: string): Error {
  const before = port.stats()
  let thrown: unknown
  try {
    call()
  } catch (error) {
    thrown = error
  }
  expect(thrown, `expected a ${kind.name} naming ${name}`).toBeInstanceOf(kind)
  const error = thrown as Error & { code?: string }
  expect(error.message.startsWith(`${name} must be `), error.message).toBe(true)
  expect(error.code).toEqual(kind === TypeError ? expect.stringMatching(/^ERR_INVALID_ARG_(TYPE|VALUE)$/) : 'ERR_OUT_OF_RANGE')
  const after = port.stats()
  expect(after.posted).toBe(before.posted)
  expect(after.queued).toBe(before.queued)
  return error
}

const notU64: Array<[unknown, ErrorClass]> = [
  [-1, RangeError],
  [1.5, RangeError],
  [Number.NaN, RangeError],
  [Number.POSITIVE_INFINITY, RangeError],
  [2 ** 53, RangeError],
  [-1n, RangeError],
  [2n ** 64n, RangeError],
  ['1', TypeError],
  [null, TypeError],
  [{}, TypeError],
  [true, TypeError],
]

describe('new CompletionPort(options)', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['options is a string', 'x', TypeError, 'options'],
    ['options is null', null, TypeError, 'options'],
    ['options is a number', 5, TypeError, 'options'],
    ['concurrency -1', { concurrency: -1 }, RangeError, 'options.concurrency'],
    ['concurrency 1.5', { concurrency: 1.5 }, RangeError, 'options.concurrency'],
    ['concurrency NaN', { concurrency: Number.NaN }, RangeError, 'options.concurrency'],
    ['concurrency Infinity', { concurrency: Number.POSITIVE_INFINITY }, RangeError, 'options.concurrency'],
    ['concurrency 2^31', { concurrency: 2 ** 31 }, RangeError, 'options.concurrency'],
    ["concurrency '2'", { concurrency: '2' }, TypeError, 'options.concurrency'],
    ['concurrency null', { concurrency: null }, TypeError, 'options.concurrency'],
    ['capacity -1', { capacity: -1 }, RangeError, 'options.capacity'],
    ['capacity 0.5', { capacity: 0.5 }, RangeError, 'options.capacity'],
    ['capacity 2^32', { capacity: 2 ** 32 }, RangeError, 'options.capacity'],
    ["capacity '3'", { capacity: '3' }, TypeError, 'options.capacity'],
    ['spinMicroseconds -1', { spinMicroseconds: -1 }, RangeError, 'options.spinMicroseconds'],
    ['spinMicroseconds 1.5', { spinMicroseconds: 1.5 }, RangeError, 'options.spinMicroseconds'],
    ['spinMicroseconds 10^6+1', { spinMicroseconds: 1_000_001 }, RangeError, 'options.spinMicroseconds'],
    ["spinMicroseconds '20'", { spinMicroseconds: '20' }, TypeError, 'options.spinMicroseconds'],
  ])('%s', (_, options, kind, name) => {
    let thrown: unknown
    try {
      makePort(options as never)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(kind)
    expect((thrown as Error).message).toMatch(new RegExp(`^${name.replace('.', '\\.')} must be `))
  })

  it('takes concurrency 0 or omitted as os.availableParallelism()', async () => {
    const { availableParallelism } = await import('node:os')
    expect(makePort().stats().concurrency).toBe(availableParallelism())
    expect(makePort({ concurrency: 0 }).stats().concurrency).toBe(availableParallelism())
    expect(makePort({ concurrency: 3 }).stats().concurrency).toBe(3)
    expect(makePort({ capacity: 0 }).stats().capacity).toBe(0)
    expect(makePort({ capacity: 7 }).stats().capacity).toBe(7)
  })
})

describe('post(key, bytes, overlapped, data)', () => {
  it('names the rule and the value in its message', () => {
    const port = makePort()
    const error = expectRejected(port, () => port.post(-1), RangeError, 'key')
    expect(error.message).toBe('key must be an integer in [0, 2^53-1] or a bigint in [0, 2^64-1], got -1')
  })

  it.each(notU64)('rejects key %s', (key, kind) => {
    const port = makePort()
    expectRejected(port, () => port.post(key as number), kind, 'key')
  })

  it('rejects a missing key', () => {
    const port = makePort()
    expectRejected(port, () => (port.post as (...args: unknown[]) => void)(), TypeError, 'key')
  })

  it.each(notU64)('rejects overlapped %s', (overlapped, kind) => {
    const port = makePort()
    // Both the fast path (all numbers) and the general path (with data) validate.
    expectRejected(port, () => port.post(1, 0, overlapped as number), kind, 'overlapped')
    expectRejected(port, () => port.post(1, 0, overlapped as number, new Uint8Array(1)), kind, 'overlapped')
  })

  it.each<[unknown, ErrorClass]>([
    [-1, RangeError],
    [2 ** 32, RangeError],
    [1.5, RangeError],
    [Number.NaN, RangeError],
    ['1', TypeError],
    [1n, TypeError],
    [null, TypeError],
  ])('rejects bytes %s', (bytes, kind) => {
    const port = makePort()
    expectRejected(port, () => port.post(1, bytes as number), kind, 'bytes')
    expectRejected(port, () => port.post(1n, bytes as number), kind, 'bytes')
  })

  it.each<[string, unknown]>([
    ['a string', 'abc'],
    ['an array', [1, 2]],
    ['a Uint16Array', new Uint16Array(2)],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['null', null],
  ])('rejects data that is %s', (_, data) => {
    const port = makePort()
    expectRejected(port, () => port.post(1, 0, 0, data as Uint8Array), TypeError, 'data')
  })

  it('validates every argument before posting: a bad last argument posts nothing', () => {
    const port = makePort()
    expectRejected(port, () => port.post(2n ** 64n - 1n, 5, 7n, 'nope' as never), TypeError, 'data')
    expect(port.get(0)).toBeNull()
  })

  it('accepts the bounds', () => {
    const port = makePort()
    port.post(0, 0, 0)
    port.post(Number.MAX_SAFE_INTEGER, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER)
    port.post(0n, 0, 2n ** 64n - 1n)
    port.post(1, 0, 0, Buffer.from('ok'))
    expect(port.stats().posted).toBe(4)
  })
})

describe('capacity', () => {
  it('throws PortFullError when the queue is full, and posts nothing', () => {
    const port = makePort({ concurrency: 1, capacity: 2 })
    port.post(1)
    port.post(2, 0, 0, new Uint8Array([1]))
    let thrown: unknown
    try {
      port.post(3n)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(PortFullError)
    expect(thrown).toBeInstanceOf(RangeError)
    expect((thrown as PortFullError).code).toBe('ERR_IOCP_PORT_FULL')
    expect((thrown as PortFullError).capacity).toBe(2)
    expect(() => port.post(4)).toThrow(PortFullError)
    expect(port.stats()).toMatchObject({ posted: 2, queued: 2 })
    // Room again after a get.
    expect(port.get(0)?.key).toBe(1)
    port.post(5)
    expect(port.getMany(10, 0).map((p) => p.key)).toEqual([2, 5])
  })
})

describe('get(timeoutMs)', () => {
  it.each<[unknown, ErrorClass]>([
    [-1, RangeError],
    [Number.NaN, RangeError],
    [Number.NEGATIVE_INFINITY, RangeError],
    ['10', TypeError],
    [null, TypeError],
    [1n, TypeError],
  ])('rejects timeoutMs %s and leaves the queue alone', (timeoutMs, kind) => {
    const port = makePort()
    port.post(1)
    expectRejected(port, () => port.get(timeoutMs as number), kind, 'timeoutMs')
    expect(port.stats().dequeued).toBe(0)
  })

  it('rounds a fractional timeout up rather than polling', () => {
    const port = makePort()
    port.post(9)
    expect(port.get(0.5)?.key).toBe(9)
    expect(port.get(0.5)).toBeNull()
  })
})

describe('getMany(max, timeoutMs)', () => {
  it.each<[unknown, ErrorClass]>([
    [0, RangeError],
    [-1, RangeError],
    [1.5, RangeError],
    [Number.NaN, RangeError],
    [Number.POSITIVE_INFINITY, RangeError],
    ['2', TypeError],
    [undefined, TypeError],
  ])('rejects max %s', (max, kind) => {
    const port = makePort()
    port.post(1)
    expectRejected(port, () => port.getMany(max as number, 0), kind, 'max')
    expect(port.stats().dequeued).toBe(0)
  })

  it('rejects a bad timeoutMs', () => {
    const port = makePort()
    port.post(1)
    expectRejected(port, () => port.getMany(1, -5), RangeError, 'timeoutMs')
    expectRejected(port, () => port.getMany(1, 'x' as never), TypeError, 'timeoutMs')
    expect(port.stats().dequeued).toBe(0)
  })
})

describe('getManyInto(batch, timeoutMs) and PacketBatch', () => {
  it.each<[string, unknown]>([
    ['an object', {}],
    ['null', null],
    ['a Uint32Array', new Uint32Array(6)],
  ])('rejects a batch that is %s', (_, batch) => {
    const port = makePort()
    port.post(1)
    expectRejected(port, () => port.getManyInto(batch as PacketBatch, 0), TypeError, 'batch')
    expect(port.stats().dequeued).toBe(0)
  })

  it('rejects a bad timeoutMs', () => {
    const port = makePort()
    port.post(1)
    expectRejected(port, () => port.getManyInto(new PacketBatch(4), -1), RangeError, 'timeoutMs')
    expect(port.stats().dequeued).toBe(0)
  })

  it.each<[unknown, ErrorClass]>([
    [0, RangeError],
    [-1, RangeError],
    [1.5, RangeError],
    [65_537, RangeError],
    ['4', TypeError],
  ])('new PacketBatch(%s) throws naming capacity', (capacity, kind) => {
    expect(() => new PacketBatch(capacity as number)).toThrow(kind)
    expect(() => new PacketBatch(capacity as number)).toThrow(/^capacity must be /)
  })

  it('accessors check the index against batch.length', () => {
    const port = makePort()
    const batch = new PacketBatch(4)
    expect(() => batch.key(0)).toThrow(RangeError)
    port.post(1)
    port.post(2)
    expect(port.getManyInto(batch, 0)).toBe(2)
    expect(batch.key(1)).toBe(2)
    for (const bad of [-1, 2, 1.5, Number.NaN]) {
      const reads: Array<(i: number) => unknown> = [
        (i) => batch.key(i),
        (i) => batch.keyBigInt(i),
        (i) => batch.overlapped(i),
        (i) => batch.overlappedBigInt(i),
        (i) => batch.bytes(i),
        (i) => batch.data(i),
        (i) => batch.packet(i),
      ]
      for (const read of reads) {
        expect(() => read(bad)).toThrow(RangeError)
        expect(() => read(bad)).toThrow(/^i must be /)
      }
    }
    expect(() => batch.key('0' as never)).toThrow(TypeError)
  })
})

describe('getAsync(options)', () => {
  it.each<[string, unknown, ErrorClass, string]>([
    ['options is a string', 'x', TypeError, 'options'],
    ['options is null', null, TypeError, 'options'],
    ['timeoutMs is -1', { timeoutMs: -1 }, RangeError, 'options.timeoutMs'],
    ['timeoutMs is NaN', { timeoutMs: Number.NaN }, RangeError, 'options.timeoutMs'],
    ["timeoutMs is '5'", { timeoutMs: '5' }, TypeError, 'options.timeoutMs'],
    ['signal is an object', { signal: {} }, TypeError, 'options.signal'],
    ['signal is null', { signal: null }, TypeError, 'options.signal'],
  ])('rejects, never throws, when %s', async (_, options, kind, name) => {
    const port = makePort()
    port.post(1)
    let promise: Promise<unknown> | undefined
    expect(() => {
      promise = port.getAsync(options as never)
    }).not.toThrow()
    const error = await promise!.then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(kind)
    expect((error as Error).message.startsWith(`${name} must be `)).toBe(true)
    expect(port.stats()).toMatchObject({ posted: 1, queued: 1, dequeued: 0, waiting: 0 })
  })
})

describe('blocking(fn)', () => {
  it.each([undefined, null, 42, 'fn', {}])('rejects fn %s', (fn) => {
    const port = makePort()
    expectRejected(port, () => port.blocking(fn as never), TypeError, 'fn')
  })
})

describe('recoverHeld(threadId)', () => {
  it.each<[unknown, ErrorClass]>([
    [-1, RangeError],
    [1.5, RangeError],
    ['1', TypeError],
    [undefined, TypeError],
  ])('rejects threadId %s', (threadId, kind) => {
    const port = makePort()
    expectRejected(port, () => port.recoverHeld(threadId as number), kind, 'threadId')
  })
})

describe('CompletionPort.fromHandle(handle)', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['a string', 'iocp.port'],
    ['an empty object', {}],
    ['a handle of another kind', { kind: 'other', id: 1, pin: 1 }],
    ['a negative id', { kind: 'iocp.port', id: -1, pin: 0 }],
    ['a fractional pin', { kind: 'iocp.port', id: 1, pin: 0.5 }],
    ['a string id', { kind: 'iocp.port', id: '1', pin: 0 }],
  ])('throws a TypeError naming handle for %s', (_, handle) => {
    expect(() => CompletionPort.fromHandle(handle as never)).toThrow(TypeError)
    expect(() => CompletionPort.fromHandle(handle as never)).toThrow(/^handle must be /)
  })

  it('returns a structured-clonable plain object', () => {
    const port = makePort()
    const handle = port.handle
    expect(Object.getPrototypeOf(handle)).toBe(Object.prototype)
    expect(structuredClone(handle)).toEqual(handle)
    expect(handle.kind).toBe('iocp.port')
    const again = CompletionPort.fromHandle(structuredClone(handle))
    again.post(3)
    expect(port.get(0)?.key).toBe(3)
  })
})

describe('errors', () => {
  it('PortClosedError carries a stable code', () => {
    const port = makePort()
    port.close()
    let thrown: unknown
    try {
      port.post(1)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(PortClosedError)
    expect(thrown).toBeInstanceOf(Error)
    expect((thrown as PortClosedError).code).toBe('ERR_IOCP_PORT_CLOSED')
    expect((thrown as PortClosedError).name).toBe('PortClosedError')
  })
})
