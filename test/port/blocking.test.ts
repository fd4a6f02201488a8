// blocking(fn): while fn runs, the calling thread does not count as running on the port, so the
// port may release another waiter; afterwards it counts again. An async fn keeps the thread out
// of the count until its promise settles.
import { afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, type Packet } from '@iocp/core'
import { sharedCells, startFixture, until, waitAtLeast, type FixtureWorker } from '../fixtures/harness.js'

const ports: CompletionPort[] = []
const workers: FixtureWorker[] = []
/** A port of concurrency 1 on which this thread has taken a packet, so counts as running. */
function runningPort(): CompletionPort {
  const port = new CompletionPort({ concurrency: 1 })
  ports.push(port)
  port.post(0)
  expect(port.get(0)?.key).toBe(0)
  expect(port.stats().running).toBe(1)
  return port
}
afterEach(async () => {
  for (const port of ports.splice(0)) port.close()
  await Promise.all(workers.splice(0).map((w) => w.exited))
})

describe('blocking(fn)', () => {
  it('returns what fn returns; the thread is not running meanwhile, and is again after', () => {
    const port = runningPort()
    expect(port.blocking(() => port.stats().running)).toBe(0)
    expect(port.stats().running).toBe(1)
  })

  it('rethrows what fn throws, running again first', () => {
    const port = runningPort()
    const error = new Error('inner')
    expect(() =>
      port.blocking(() => {
        throw error
      }),
    ).toThrow(error)
    expect(port.stats().running).toBe(1)
  })

  it('nests', () => {
    const port = runningPort()
    const inner = port.blocking(() => {
      const nested = port.blocking(() => port.stats().running)
      return [nested, port.stats().running]
    })
    expect(inner).toEqual([0, 0])
    expect(port.stats().running).toBe(1)
  })

  it('with an async fn, returns its promise and counts the thread again only once it settles', async () => {
    const port = runningPort()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const result = port.blocking(async () => {
      await gate
      return 'done'
    })
    expect(result).toBeInstanceOf(Promise)
    await Promise.resolve()
    expect(port.stats().running).toBe(0)
    release()
    expect(await result).toBe('done')
    expect(port.stats().running).toBe(1)
  })

  it('with an async fn that rejects, rejects the same way and counts the thread again', async () => {
    const port = runningPort()
    const error = new Error('async inner')
    await expect(port.blocking(() => Promise.reject(error))).rejects.toBe(error)
    expect(port.stats().running).toBe(1)
  })

  it('lets the port release a waiting worker while this thread holds the only slot', async () => {
    const port = runningPort()
    // cells[0]: packets the worker has taken.
    const cells = sharedCells(1)
    const consumer = startFixture('consumer.mjs', { handle: port.handle, limit: 1, cells })
    workers.push(consumer)
    // Step 1: the worker parks in get().
    await until(() => port.stats().waiting === 1)
    // Step 2: this thread holds the only slot, so the new packet is queued, not handed over.
    port.post(2)
    expect(port.stats()).toMatchObject({ queued: 1, waiting: 1, running: 1 })
    // Step 3: inside blocking() this thread stops counting; the port releases the worker with
    // the packet, and we wait (blocked, as promised) until the worker says it has it.
    port.blocking(() => waitAtLeast(cells, 0, 1))
    const done = await consumer.message('done')
    expect(done.error).toBeNull()
    expect(consumer.messages.filter((m) => m.type === 'packet').map((m) => (m.packet as Packet).key)).toEqual([2])
  })
})
