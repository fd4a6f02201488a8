// PortPool drives Piscina through a few things Piscina's README does not document: the
// `loadBalancer` option (its arguments: the task, carrying `Piscina.queueOptionsSymbol`, and
// worker objects with `id`, `currentUsage`, `terminating`, `destroyed`), the `workerCreate` /
// `workerDestroy` events, the `Piscina.move()` symbols, and two things of its minThreads: the
// workers its constructor makes are taken as ready at once (a task goes to one before it has
// booted), and `options` is its live options object (minThreads set to 0 there is obeyed). @iocp/core pins Piscina exactly;
// this suite fails loudly, naming the broken assumption, if a Piscina upgrade changes any of it.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Piscina } from 'piscina'

const CORE = fileURLToPath(new URL('../../packages/core/package.json', import.meta.url))
const THREAD = fileURLToPath(new URL('../fixtures/piscina-thread.cjs', import.meta.url))

/** The version of the piscina that @iocp/core resolves, read from its package.json. */
function resolvedPiscinaVersion(): string {
  let dir = dirname(createRequire(CORE).resolve('piscina'))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version: string }
      if (pkg.name === 'piscina') return pkg.version
    } catch {
      // not here; go up
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('piscina/package.json not found')
    dir = parent
  }
}

const pools: Piscina[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()))
})

describe('the Piscina that @iocp/core uses', () => {
  it('is pinned to one exact version, and that version is the one installed', () => {
    const pinned = (JSON.parse(readFileSync(CORE, 'utf8')) as { dependencies: Record<string, string> }).dependencies.piscina
    expect(pinned, '@iocp/core must pin piscina exactly (no range): see this file').toMatch(/^\d+\.\d+\.\d+$/)
    expect(resolvedPiscinaVersion(), 'the installed piscina is not the pinned one').toBe(pinned)
  })

  it('exports the symbols PortPool reads', () => {
    expect(typeof Piscina.queueOptionsSymbol, 'Piscina.queueOptionsSymbol').toBe('symbol')
    expect(typeof Piscina.valueSymbol, 'Piscina.valueSymbol (Piscina.move)').toBe('symbol')
    expect(typeof Piscina.transferableSymbol, 'Piscina.transferableSymbol (Piscina.move)').toBe('symbol')
    // PortPool reads these three from the symbol registry (pool/shared/piscina-symbols.ts), so
    // that neither a worker nor `import '@iocp/core'` loads Piscina for them.
    expect(Piscina.queueOptionsSymbol, 'Piscina.queueOptionsSymbol is Symbol.for(\'Piscina.queueOptions\')').toBe(
      Symbol.for('Piscina.queueOptions'),
    )
    expect(Piscina.valueSymbol, 'Piscina.valueSymbol is Symbol.for(\'Piscina.valueOf\')').toBe(Symbol.for('Piscina.valueOf'))
    expect(Piscina.transferableSymbol, 'Piscina.transferableSymbol is Symbol.for(\'Piscina.transferable\')').toBe(
      Symbol.for('Piscina.transferable'),
    )
    const moved = Piscina.move(new ArrayBuffer(1)) as unknown as Record<symbol, unknown>
    expect(moved[Piscina.valueSymbol], 'Piscina.move() keeps the value under valueSymbol').toBeInstanceOf(ArrayBuffer)
    expect(moved[Piscina.transferableSymbol], 'Piscina.move() keeps the transferable under transferableSymbol').toBeInstanceOf(ArrayBuffer)
  })

  it('calls loadBalancer with the task (queueOptionsSymbol intact) and workers of the shape PortPool reads, and obeys its choice', async () => {
    const seen: Array<{ tag: unknown; workers: unknown[] }> = []
    const created: unknown[] = []
    const pool = new Piscina({
      filename: THREAD,
      minThreads: 2,
      maxThreads: 2,
      idleTimeout: Infinity,
      atomics: 'disabled',
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      loadBalancer: ((task: Record<symbol, unknown>, workers: Array<Record<string, unknown>>) => {
        seen.push({ tag: task[Piscina.queueOptionsSymbol], workers: workers.map((w) => ({ ...pick(w) })) })
        // Choose the last idle worker, as PortPool chooses one it has not used yet.
        for (let i = workers.length - 1; i >= 0; i--) if (workers[i]!.currentUsage === 0) return workers[i]
        return null
      }) as never,
    } as ConstructorParameters<typeof Piscina>[0])
    pools.push(pool)
    pool.on('workerCreate', (worker: unknown) => created.push(worker))
    // PortPool puts its tag on the task value itself, under queueOptionsSymbol.
    const threadId = (await pool.run({ [Piscina.queueOptionsSymbol]: { loop: 7 } })) as number
    expect(seen.length, 'loadBalancer was never called').toBeGreaterThan(0)
    const last = seen.at(-1)!
    expect(last.tag, 'the task no longer carries its queueOptionsSymbol value').toEqual({ loop: 7 })
    for (const worker of last.workers) {
      expect(worker, 'a worker given to loadBalancer lacks a field PortPool reads').toEqual({
        id: expect.any(Number),
        currentUsage: expect.any(Number),
        terminating: expect.any(Boolean),
        destroyed: expect.any(Boolean),
      })
    }
    const chosen = (last.workers as Array<{ id: number; currentUsage: number }>).filter((w) => w.currentUsage === 0).at(-1)!
    expect(threadId, "the task did not run on the worker loadBalancer chose (worker.id is its threadId)").toBe(chosen.id)
    expect(created.length, "'workerCreate' is not emitted").toBeGreaterThan(0)
  })

  it("emits 'workerDestroy', with a worker that has a numeric id, when a worker exits", async () => {
    const pool = new Piscina({ filename: THREAD, minThreads: 1, maxThreads: 1, idleTimeout: Infinity })
    pools.push(pool)
    await pool.run(null)
    const destroyed = new Promise<{ id: unknown }>((resolve) => pool.once('workerDestroy', resolve))
    await pool.threads[0]!.terminate()
    expect(typeof (await destroyed).id, "'workerDestroy' no longer passes a worker with an id").toBe('number')
  })
})

describe("Piscina's minThreads, as PortPool uses it", () => {
  it("hands a task to a worker of the constructor's minThreads at once, before the worker has booted", async () => {
    const offered: number[] = []
    const pool = new Piscina({
      filename: THREAD,
      minThreads: 2,
      maxThreads: 4,
      idleTimeout: Infinity,
      atomics: 'disabled',
      loadBalancer: ((_task: unknown, workers: Array<{ currentUsage: number }>) => {
        offered.push(workers.length)
        return workers.find((w) => w.currentUsage === 0) ?? null
      }) as never,
    } as ConstructorParameters<typeof Piscina>[0])
    pools.push(pool)
    const ran = pool.run(null)
    // Synchronously, in the same turn as the constructor: no worker can have said it is ready.
    expect(offered, 'the task was not offered to the constructor\'s workers at once (PortPool sends its starts that way)').toEqual([2])
    expect(pool.queueSize, 'the task waits in the queue instead of going to a worker at once').toBe(0)
    expect(typeof (await ran)).toBe('number')
  })

  it('obeys minThreads set to 0 on `options` after the constructor: a worker that dies is not replaced', async () => {
    const pool = new Piscina({ filename: THREAD, minThreads: 2, maxThreads: 4, idleTimeout: Infinity })
    pools.push(pool)
    ;(pool.options as { minThreads: number }).minThreads = 0
    expect(pool.minThreads, '`options` is no longer the options object Piscina reads').toBe(0)
    await Promise.all([pool.run(null), pool.run(null)])
    const [first] = pool.threads
    const exited = new Promise((resolve) => first!.once('exit', resolve))
    await first!.terminate()
    await exited
    // Piscina replaces a dead worker in its exit handler, synchronously, when minThreads asks for it.
    await new Promise((resolve) => setImmediate(resolve))
    expect(pool.threads.length, 'Piscina replaced the dead worker: it ignores minThreads set on `options`').toBe(1)
  })
})

function pick(worker: Record<string, unknown>): Record<string, unknown> {
  return { id: worker.id, currentUsage: worker.currentUsage, terminating: worker.terminating, destroyed: worker.destroyed }
}
