// Process exit and worker termination while threads sleep in get(): nothing hangs, nothing is
// lost. Each exit case runs in a child process so that a hang fails by its timeout instead of
// taking the test runner down.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { CompletionPort, PortClosedError } from '@iocp/core'
import { startFixture, until } from '../fixtures/harness.js'

function runChild(fixture: string, args: string[], nodeArgs: string[] = []) {
  const file = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url))
  return spawnSync(process.execPath, [...nodeArgs, file, ...args], { encoding: 'utf8', timeout: 30_000 })
}

describe('process exit with workers blocked in get()', () => {
  it('process.exit() does not hang', () => {
    const child = runChild('exit-with-blocked-workers.mjs', ['exit'])
    expect(child.signal).toBeNull() // not killed by the timeout
    expect(child.stdout).toContain('blocked')
    expect(child.status).toBe(7)
  })

  it('an uncaught error on the main thread does not hang', () => {
    const child = runChild('exit-with-blocked-workers.mjs', ['throw'])
    expect(child.signal).toBeNull()
    expect(child.stderr).toContain('uncaught on purpose')
    expect(child.status).toBe(1)
  })
})

describe('worker termination', () => {
  it('terminate() of a blocked worker completes once the port is closed', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const worker = startFixture('blocked-get.mjs', { handle: port.handle })
    await until(() => port.stats().waiting === 1)
    port.close() // wakes it: a thread blocked in native code cannot be terminated otherwise
    expect(typeof (await worker.worker.terminate())).toBe('number') // resolves: the thread ended
    expect(() => port.post(1)).toThrow(PortClosedError)
  })

  it('a packet handed to a thread that is being terminated goes back to the head of the queue', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const worker = startFixture('blocked-get.mjs', { handle: port.handle })
    await until(() => port.stats().waiting === 1)
    const terminated = worker.worker.terminate() // the worker is marked as dying at once
    port.post(42) // handed to the only waiter: the dying worker
    port.post(43)
    await terminated
    expect(worker.messages).toHaveLength(0) // it never ran JS with the packet
    const stats = port.stats()
    expect(stats).toMatchObject({ queued: 2, running: 0, waiting: 0, dequeued: 0 })
    expect(port.getMany(2, 0).map((p) => p.key)).toEqual([42, 43]) // same order as posted
    port.close()
  })
})

describe('handle lifetime', () => {
  it('a handle sent on after its wrapper was collected still opens; once all are gone it does not', () => {
    const child = runChild('handle-outlives-wrapper.mjs', [], ['--expose-gc'])
    expect(child.signal).toBeNull()
    expect(child.stderr).toBe('')
    const result = JSON.parse(child.stdout.trim()) as { key: number | null; reopened: string }
    expect(result.key).toBe(99)
    expect(result.reopened).toBe('PortClosedError')
  })
})

describe('the event loop and getAsync', () => {
  it('a pending getAsync keeps the process alive until its packet arrives', () => {
    const child = runChild('keep-alive.mjs', ['pending'])
    expect(child.signal).toBeNull()
    expect(child.stdout.split('\n').filter(Boolean)).toEqual(['got 5', 'beforeExit'])
  })

  it('a port with nothing pending does not keep the process alive', () => {
    const child = runChild('keep-alive.mjs', ['idle'])
    expect(child.signal).toBeNull()
    expect(child.status).toBe(0)
    expect(child.stdout.split('\n').filter(Boolean)).toEqual(['AbortError', 'beforeExit'])
  })
})

describe('a parked get in a thread that is going away', () => {
  it('worker.terminate() ends a worker blocked in get() without closing the port', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const worker = startFixture('blocked-get.mjs', { handle: port.handle })
    await until(() => port.stats().waiting === 1)
    await worker.worker.terminate() // resolves: the parked get gave up
    expect(worker.messages).toHaveLength(0)
    expect(port.stats()).toMatchObject({ waiting: 0, running: 0 })
    port.post(7) // not handed to the dead thread
    expect(port.get(0)?.key).toBe(7)
    port.close()
  })

  it('process.exit() does not hang when only workers use ports', () => {
    const child = runChild('exit-workers-only.mjs', [])
    expect(child.signal).toBeNull()
    expect(child.stdout).toContain('blocked')
    expect(child.status).toBe(5)
  })
})
