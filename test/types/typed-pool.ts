// Type tests of a typed PortPool, checked by `pnpm typecheck` (tsc -b): each expectTypeOf fails
// to compile if an inferred type is wrong, and each @ts-expect-error fails to compile if the
// line it marks stops being an error (as it would if the payload were inferred as `any`).
import { expectTypeOf } from 'vitest'
import { PortPool } from '@iocp/core'

declare const pool: PortPool<typeof import('../fixtures/typed-tasks.js')>

// The default export: payload and result from its signature.
expectTypeOf(pool.run({ a: 1, b: 2 })).toEqualTypeOf<Promise<number>>()
// A named async export: the result is awaited.
expectTypeOf(pool.run('x', { name: 'shout' })).toEqualTypeOf<Promise<string>>()
// A promised handler (Piscina's delayed start): unwrapped.
expectTypeOf(pool.run(3, { name: 'delayed' })).toEqualTypeOf<Promise<boolean>>()

// @ts-expect-error the default task takes { a, b }
void pool.run('not numbers')
// @ts-expect-error shout takes a string
void pool.run(5, { name: 'shout' })
// @ts-expect-error no export of that name
void pool.run('x', { name: 'shuot' })
// @ts-expect-error an export that is not a task
void pool.run(1, { name: 'notATask' })

// An untyped pool takes and returns anything, as Piscina's does.
declare const untyped: PortPool
expectTypeOf(untyped.run(1)).toEqualTypeOf<Promise<any>>()
expectTypeOf(untyped.run('x', { name: 'anything' })).toEqualTypeOf<Promise<any>>()
