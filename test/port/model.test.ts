// A model test: random single-thread sequences of post / get(0) / getMany(n, 0) /
// getManyInto(batch, 0) / shutdown / close, run against a port and against a reference model (an
// array and a state), compared after every step: every result, every error, and the counters.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CompletionPort, PacketBatch, PortClosedError, type Packet } from '@iocp/core'

type Value = number | bigint
type Op =
  | { op: 'post'; key: Value; bytes: number; overlapped: Value; data: Uint8Array | undefined }
  | { op: 'get' }
  | { op: 'getMany'; max: number }
  | { op: 'getManyInto'; capacity: number }
  | { op: 'shutdown' }
  | { op: 'close' }

interface Plain {
  key: Value
  bytes: number
  overlapped: Value
  data: number[] | undefined
}

const value = fc.oneof(fc.maxSafeNat(), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0, 1, 2n ** 64n - 1n))
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('post' as const),
      key: value,
      bytes: fc.nat({ max: 2 ** 32 - 1 }),
      overlapped: value,
      data: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ op: 'get' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('getMany' as const), max: fc.integer({ min: 1, max: 5 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('getManyInto' as const), capacity: fc.integer({ min: 1, max: 5 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'shutdown' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
)

function plain(packet: Packet): Plain {
  return {
    key: packet.key,
    bytes: packet.bytes,
    overlapped: packet.overlapped,
    data: packet.data === undefined ? undefined : Array.from(packet.data),
  }
}

/** Runs `call`; returns `'closed'` if it threw PortClosedError (anything else fails the test). */
function orClosed<T>(call: () => T): T | 'closed' {
  try {
    return call()
  } catch (error) {
    if (error instanceof PortClosedError) return 'closed'
    throw error
  }
}

function run(ops: Op[]): void {
  const port = new CompletionPort({ concurrency: 1 })
  const queue: Plain[] = []
  let state: 'open' | 'shutdown' | 'closed' = 'open'
  let posted = 0
  let dequeued = 0
  /** What a get on an empty or closed port must do. */
  const emptyResult = () => (state === 'open' ? 'empty' : 'closed')
  try {
    for (const step of ops) {
      switch (step.op) {
        case 'post': {
          const result = orClosed(() => port.post(step.key, step.bytes, step.overlapped, step.data))
          if (state === 'open') {
            expect(result).toBeUndefined()
            queue.push({
              key: step.key,
              bytes: step.bytes,
              overlapped: step.overlapped,
              data: step.data === undefined ? undefined : Array.from(step.data),
            })
            posted++
            // The port copied the payload: scribbling on the source changes nothing.
            step.data?.fill(0xaa)
          } else {
            expect(result).toBe('closed')
          }
          break
        }
        case 'get': {
          const result = orClosed(() => port.get(0))
          if (state !== 'closed' && queue.length > 0) {
            expect(result === 'closed' || result === null ? result : plain(result)).toEqual(queue.shift())
            dequeued++
          } else {
            expect(result).toBe(emptyResult() === 'empty' ? null : 'closed')
          }
          break
        }
        case 'getMany': {
          const result = orClosed(() => port.getMany(step.max, 0))
          if (state !== 'closed' && queue.length > 0) {
            const expected = queue.splice(0, step.max)
            expect(result === 'closed' ? result : result.map(plain)).toEqual(expected)
            dequeued += expected.length
          } else {
            expect(result).toEqual(emptyResult() === 'empty' ? [] : 'closed')
          }
          break
        }
        case 'getManyInto': {
          const batch = new PacketBatch(step.capacity)
          const result = orClosed(() => port.getManyInto(batch, 0))
          if (state !== 'closed' && queue.length > 0) {
            const expected = queue.splice(0, step.capacity)
            expect(result).toBe(expected.length)
            expect(Array.from({ length: batch.length }, (_, i) => plain(batch.packet(i)))).toEqual(expected)
            dequeued += expected.length
          } else {
            expect(result).toBe(emptyResult() === 'empty' ? 0 : 'closed')
          }
          break
        }
        case 'shutdown': {
          const result = orClosed(() => port.shutdown())
          if (state === 'closed') {
            expect(result).toBe('closed')
          } else {
            expect(result).toBeUndefined()
            state = 'shutdown'
          }
          break
        }
        case 'close': {
          expect(port.close().map(plain)).toEqual(state === 'closed' ? [] : queue.splice(0))
          state = 'closed'
          break
        }
      }
      if (state === 'closed') {
        expect(orClosed(() => port.stats())).toBe('closed')
      } else {
        expect(port.stats()).toMatchObject({ queued: queue.length, posted, dequeued, state })
      }
    }
  } finally {
    port.close()
  }
}

describe('model', () => {
  it('a port behaves like a FIFO array under random single-thread sequences', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => run(ops)),
      { numRuns: 300 },
    )
  })

  it('long runs without close or shutdown', () => {
    const openOps = op.filter((o) => o.op !== 'close' && o.op !== 'shutdown')
    fc.assert(
      fc.property(fc.array(openOps, { minLength: 100, maxLength: 400 }), (ops) => run(ops)),
      { numRuns: 40 },
    )
  })
})
