// Every error the public API throws for a bad argument carries a string `code` (Node's
// ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE) and a message that names the
// argument. Each public method is fed a matrix of hostile values in each argument position (the
// other arguments valid): a value the argument accepts must not throw, any other must throw a
// well-shaped error, and the API never runs code the caller hid in a value (valueOf,
// Symbol.toPrimitive, a Proxy trap) while rendering it.
import { isUint8Array } from 'node:util/types'
import { afterAll, describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch } from '@iocp/core'

/** Thrown by the hostile values below: seeing it means the API ran the caller's code. */
class Sentinel extends Error {}

const hostileProxy = new Proxy(
  {},
  {
    get() {
      throw new Sentinel('a Proxy trap ran')
    },
    getPrototypeOf() {
      throw new Sentinel('a Proxy trap ran')
    },
  },
)

/** The matrix's values, each with a label for the test name. */
const VALUES: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['null', null],
  ['true', true],
  ['0', 0],
  ['-0', -0],
  ['1', 1],
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['2^32', 2 ** 32],
  ['2^53', 2 ** 53],
  ['1n', 1n],
  ['-1n', -1n],
  ['2n^64n', 2n ** 64n],
  ["''", ''],
  ["'1'", '1'],
  ['a symbol', Symbol('s')],
  ['{}', {}],
  ['[]', []],
  ['[1]', [1]],
  ['a function', () => 1],
  ['a Uint8Array', new Uint8Array(1)],
  ['Object.create(null)', Object.create(null)],
  ['an object with valueOf', { valueOf: () => 0 }],
  [
    'an object whose toPrimitive throws',
    {
      [Symbol.toPrimitive]() {
        throw new Sentinel('Symbol.toPrimitive ran')
      },
    },
  ],
  ['a hostile Proxy', hostileProxy],
  ['Object.create(PacketBatch.prototype)', Object.create(PacketBatch.prototype)],
  ['Object.create(CompletionPort.prototype)', Object.create(CompletionPort.prototype)],
  ['a Date', new Date(0)],
]

const isU53 = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && !Object.is(v, -0)
const isU64 = (v: unknown): boolean =>
  isU53(v) || Object.is(v, -0) || (typeof v === 'bigint' && v >= 0n && v < 2n ** 64n)
const isU32 = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff
const isTimeout = (v: unknown): boolean => typeof v === 'number' && v >= 0
const isIntIn =
  (min: number, max: number) =>
  (v: unknown): boolean =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
const optional =
  (accepts: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    v === undefined || accepts(v)

/** One argument position of one method. */
interface Case {
  /** The test's name. */
  title: string
  /** The argument's name as the message must start with it. */
  arg: string
  /** Whether the argument accepts `value`. */
  accepts: (value: unknown) => boolean
  /**
   * The argument is an object whose properties the method reads (an options bag, a handle, a
   * signal): an error thrown by the caller's own getter or Proxy trap may come out unchanged, as
   * it does from Node's own APIs.
   */
  reads?: true
  /** Makes the call with `value` in this position (synchronously, or a promise for getAsync). */
  call: (value: unknown) => unknown
}

const ports: CompletionPort[] = []
function port(): CompletionPort {
  const made = new CompletionPort({ concurrency: 4 })
  ports.push(made)
  return made
}
afterAll(() => {
  for (const p of ports.splice(0)) p.close()
})

/** A port with one packet queued, so that a get with a valid timeout returns at once. */
function loaded(): CompletionPort {
  const p = port()
  p.post(1)
  return p
}

/** A batch holding two packets, for the accessors. */
function filled(): PacketBatch {
  const batch = new PacketBatch(4)
  batch.push(1, 2, 3)
  batch.push(4n, 5, 6n)
  return batch
}

const any = (): boolean => false
/** An options bag with no keys (every key in the matrix is unknown or has a bad value). */
const isEmptyBag = (v: unknown): boolean =>
  v === undefined || (typeof v === 'object' && v !== null && v !== hostileProxy && Object.keys(v).length === 0)
const batchAccessors = ['key', 'keyBigInt', 'overlapped', 'overlappedBigInt', 'bytes', 'data', 'packet'] as const

const CASES: Case[] = [
  {
    title: 'new CompletionPort(options)',
    arg: 'options',
    accepts: isEmptyBag,
    reads: true, call: (v) => new CompletionPort(v as never).close(),
  },
  ...(['concurrency', 'capacity', 'spinMicroseconds'] as const).map<Case>((key) => ({
    title: `new CompletionPort({ ${key} })`,
    arg: `options.${key}`,
    accepts: optional(isIntIn(0, key === 'capacity' ? 0xffff_ffff : key === 'concurrency' ? 0x7fff_ffff : 1_000_000)),
    call: (v) => new CompletionPort({ [key]: v }).close(),
  })),
  { title: 'CompletionPort.fromHandle(handle)', arg: 'handle', accepts: any, reads: true, call: (v) => CompletionPort.fromHandle(v as never) },
  { title: 'post(key)', arg: 'key', accepts: isU64, call: (v) => port().post(v as never) },
  { title: 'post(_, bytes)', arg: 'bytes', accepts: optional(isU32), call: (v) => port().post(1, v as never) },
  { title: 'post(_, _, overlapped)', arg: 'overlapped', accepts: optional(isU64), call: (v) => port().post(1, 0, v as never) },
  {
    title: 'post(_, _, _, data)',
    arg: 'data',
    accepts: (v) => v === undefined || isUint8Array(v),
    call: (v) => port().post(1, 0, 0, v as never),
  },
  { title: 'postMany(batch)', arg: 'batch', accepts: any, call: (v) => port().postMany(v as never) },
  { title: 'get(timeoutMs)', arg: 'timeoutMs', accepts: optional(isTimeout), call: (v) => loaded().get(v as never) },
  {
    title: 'getMany(max)',
    arg: 'max',
    accepts: isIntIn(1, Number.MAX_SAFE_INTEGER),
    call: (v) => loaded().getMany(v as never, 0),
  },
  {
    title: 'getMany(_, timeoutMs)',
    arg: 'timeoutMs',
    accepts: optional(isTimeout),
    call: (v) => loaded().getMany(1, v as never),
  },
  { title: 'getManyInto(batch)', arg: 'batch', accepts: any, call: (v) => loaded().getManyInto(v as never, 0) },
  {
    title: 'getManyInto(_, timeoutMs)',
    arg: 'timeoutMs',
    accepts: optional(isTimeout),
    call: (v) => loaded().getManyInto(new PacketBatch(1), v as never),
  },
  {
    title: 'getAsync(options)',
    arg: 'options',
    accepts: isEmptyBag,
    reads: true,
    call: (v) => loaded().getAsync(v as never),
  },
  {
    title: 'getAsync({ timeoutMs })',
    arg: 'options.timeoutMs',
    accepts: optional(isTimeout),
    call: (v) => loaded().getAsync({ timeoutMs: v as never }),
  },
  {
    title: 'getAsync({ signal })',
    arg: 'options.signal',
    accepts: (v) => v === undefined,
    reads: true,
    call: (v) => loaded().getAsync({ signal: v as never }),
  },
  { title: 'blocking(fn)', arg: 'fn', accepts: (v) => typeof v === 'function', call: (v) => port().blocking(v as never) },
  {
    title: 'recoverHeld(threadId)',
    arg: 'threadId',
    accepts: (v) => isU53(v) || Object.is(v, -0),
    call: (v) => port().recoverHeld(v as never),
  },
  { title: 'new PacketBatch(capacity)', arg: 'capacity', accepts: isIntIn(1, 65_536), call: (v) => new PacketBatch(v as never) },
  { title: 'batch.push(key)', arg: 'key', accepts: isU64, call: (v) => new PacketBatch(1).push(v as never) },
  { title: 'batch.push(_, bytes)', arg: 'bytes', accepts: optional(isU32), call: (v) => new PacketBatch(1).push(1, v as never) },
  {
    title: 'batch.push(_, _, overlapped)',
    arg: 'overlapped',
    accepts: optional(isU64),
    call: (v) => new PacketBatch(1).push(1, 0, v as never),
  },
  {
    title: 'batch.push(_, _, _, data)',
    arg: 'data',
    accepts: (v) => v === undefined || isUint8Array(v),
    call: (v) => new PacketBatch(1).push(1, 0, 0, v as never),
  },
  ...batchAccessors.map<Case>((name) => ({
    title: `batch.${name}(i)`,
    arg: 'i',
    accepts: (v) => v === 0 || v === 1,
    call: (v) => filled()[name](v as never),
  })),
]

/** Runs the call; a promise (getAsync) is awaited, so a rejection counts as a throw. */
async function outcome(call: () => unknown): Promise<{ threw: boolean; error?: unknown }> {
  try {
    const result = call()
    if (result instanceof Promise) await result
    return { threw: false }
  } catch (error) {
    return { threw: true, error }
  }
}

describe('the shape of every argument error', () => {
  describe.each(CASES)('$title', ({ arg, accepts, reads, call }) => {
    it.each(VALUES)('with %s', async (_label, value) => {
      const result = await outcome(() => call(value))
      if (accepts(value)) {
        expect(result.error).toBeUndefined()
        return
      }
      expect(result.threw, 'a value the argument does not accept must be refused').toBe(true)
      const error = result.error as Error & { code?: unknown }
      if (reads === true && value === hostileProxy && error instanceof Sentinel) return
      expect(error, 'the API ran code hidden in the value').not.toBeInstanceOf(Sentinel)
      expect(error).toBeInstanceOf(Error)
      expect(typeof error.code, `no code on: ${String(error)}`).toBe('string')
      expect(error.code).toMatch(/^ERR_(INVALID_ARG_TYPE|INVALID_ARG_VALUE|OUT_OF_RANGE)$/)
      // The argument, or one of its keys (`options.concurency is not an option ...`).
      expect(error.message.startsWith(`${arg} `) || error.message.startsWith(`${arg}.`), error.message).toBe(true)
    })
  })
})
