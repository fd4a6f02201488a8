// PacketBatch reused across pushes, posts and fills: push has a fast path that writes only the
// low words of a clean packet (the batch tracks which packets a fill or the general push left
// dirty, and clear() zeroes those), and a general one for the rest. A property test (fast-check);
// kept apart from post-many.test.ts, which the platform runs (test/platform/run.mjs) also run in
// a project that has only the packed tarballs.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CompletionPort, PacketBatch } from '@iocp/core'

describe('PacketBatch reused', () => {
  it('keeps every value through push, postMany and getManyInto, in a batch reused across fills', () => {
    // push has a fast path that writes only the low words of a clean packet, and a general one
    // for the rest; one batch is pushed to, posted, refilled by getManyInto, and pushed to again
    // (after clear(), or appended to as it was filled). Every packet must read back as pushed.
    const u64 = fc.oneof(
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.constantFrom(0, -0, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER),
      fc.maxSafeNat(),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    )
    const packet = fc.record({ key: u64, bytes: fc.integer({ min: 0, max: 2 ** 32 - 1 }), overlapped: u64 })
    const round = fc.record({ clear: fc.boolean(), packets: fc.array(packet, { minLength: 1, maxLength: 4 }) })
    const same = (got: number | bigint, pushed: number | bigint): void =>
      void expect(got).toBe(typeof pushed === 'number' ? pushed + 0 : pushed)
    const port = new CompletionPort({ concurrency: 1 })
    try {
      fc.assert(
        fc.property(fc.array(round, { minLength: 1, maxLength: 6 }), (rounds) => {
          const batch = new PacketBatch(8)
          let held: Array<{ key: number | bigint; bytes: number; overlapped: number | bigint }> = []
          for (const r of rounds) {
            if (r.clear) {
              batch.clear()
              held = []
            }
            for (const p of r.packets) {
              if (held.length === batch.capacity) break
              batch.push(p.key, p.bytes, p.overlapped)
              held.push(p)
            }
            expect(port.postMany(batch)).toBe(held.length)
            expect(port.getManyInto(batch, 0)).toBe(held.length)
            held.forEach((p, i) => {
              same(batch.key(i), p.key)
              expect(batch.bytes(i)).toBe(p.bytes)
              same(batch.overlapped(i), p.overlapped)
            })
          }
        }),
      )
    } finally {
      port.close()
    }
  })

})
