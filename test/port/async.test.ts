// getAsync(): a packet delivered on this thread's event loop. It resolves with a queued packet
// or a later one, resolves null on timeout, rejects on abort without losing the packet (even one
// already on its way), and several pending calls on one thread are all served, even with
// concurrency 1 (a thread never deadlocks itself). Async waiters count in stats().waiting.
import { describe, expect, it } from 'vitest'
import { CompletionPort, type Packet } from '@iocp/core'
import { startFixture, until } from '../fixtures/harness.js'
import { useCleanup } from '../fixtures/cleanup.js'

const { makePort, workers } = useCleanup(1)

/** The rejection reason of `promise` (fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`)
    },
    (reason: unknown) => reason,
  )
}

describe('getAsync()', () => {
  it('resolves with a packet that is already queued', async () => {
    const port = makePort()
    port.post(1, 2, 3)
    expect(await port.getAsync()).toEqual({ key: 1, bytes: 2, overlapped: 3, data: undefined })
    expect(port.stats()).toMatchObject({ queued: 0, dequeued: 1, waiting: 0 })
  })

  it('resolves with a packet posted later', async () => {
    const port = makePort()
    const pending = port.getAsync()
    expect(port.stats().waiting).toBe(1)
    port.post(5n, 0, 6n)
    expect(await pending).toEqual({ key: 5n, bytes: 0, overlapped: 6n, data: undefined })
    expect(port.stats().waiting).toBe(0)
  })

  it('resolves with a packet posted by another thread', async () => {
    const port = makePort()
    const pending = port.getAsync()
    workers.push(startFixture('producer.mjs', { handle: port.handle, producer: 3, count: 1 }))
    expect(await pending).toEqual({ key: 3 << 16, bytes: 0, overlapped: 0, data: undefined })
  })

  it('resolves null when the timeout expires first, and withdraws the waiter', async () => {
    const port = makePort()
    expect(await port.getAsync({ timeoutMs: 0 })).toBeNull()
    expect(await port.getAsync({ timeoutMs: 5 })).toBeNull()
    expect(await port.getAsync({ timeoutMs: 0.5 })).toBeNull()
    expect(port.stats().waiting).toBe(0)
    // Nothing is left registered to swallow the next packet.
    port.post(1)
    expect(port.stats().queued).toBe(1)
    expect(port.get(0)?.key).toBe(1)
  })

  it('with a timeout still resolves with a packet that is already there', async () => {
    const port = makePort()
    port.post(4)
    expect((await port.getAsync({ timeoutMs: 0 }))?.key).toBe(4)
  })

  it('rejects at once with an AbortError when the signal is already aborted, registering nothing', async () => {
    const port = makePort()
    port.post(1)
    const controller = new AbortController()
    controller.abort()
    const reason = await rejection(port.getAsync({ signal: controller.signal }))
    expect(reason).toBeInstanceOf(DOMException)
    expect((reason as DOMException).name).toBe('AbortError')
    expect(port.stats()).toMatchObject({ waiting: 0, queued: 1, dequeued: 0 })
  })

  it("rejects with the signal's own reason", async () => {
    const port = makePort()
    const controller = new AbortController()
    const reason = new Error('stop')
    const pending = port.getAsync({ signal: controller.signal })
    controller.abort(reason)
    expect(await rejection(pending)).toBe(reason)
  })

  it('rejects with an AbortError when aborted while pending; the next packet is not lost', async () => {
    const port = makePort()
    const controller = new AbortController()
    const pending = port.getAsync({ signal: controller.signal, timeoutMs: 60_000 })
    expect(port.stats().waiting).toBe(1)
    controller.abort()
    expect((await rejection(pending) as Error).name).toBe('AbortError')
    expect(port.stats().waiting).toBe(0)
    port.post(8)
    expect(port.stats().queued).toBe(1)
    expect(port.get(0)?.key).toBe(8)
  })

  it('an abort that races a delivery already on its way puts the packet back at the head of the queue', async () => {
    const port = makePort()
    const controller = new AbortController()
    const pending = port.getAsync({ signal: controller.signal })
    // Step 1: post hands packet 1 straight to the async waiter; its delivery callback cannot
    // run before this synchronous code yields.
    port.post(1)
    // Step 2: packet 2 finds no waiter and is queued.
    port.post(2)
    // Step 3: the abort cannot withdraw the waiter (its delivery is in flight), so the promise
    // rejects and the callback, when it runs, hands packet 1 back to the head of the queue.
    controller.abort()
    expect((await rejection(pending) as Error).name).toBe('AbortError')
    await until(() => port.stats().queued === 2)
    expect(port.getMany(2, 0).map((p) => p.key)).toEqual([1, 2])
  })

  it('the same race with a payload keeps the payload', async () => {
    const port = makePort()
    const controller = new AbortController()
    const pending = port.getAsync({ signal: controller.signal })
    port.post(1, 2, 0, new Uint8Array([7, 7]))
    controller.abort()
    await rejection(pending)
    await until(() => port.stats().queued === 1)
    const packet = port.get(0)
    expect(packet?.key).toBe(1)
    expect(Array.from(packet?.data ?? [])).toEqual([7, 7])
  })

  it('a timeout that races a delivery resolves with the packet instead of dropping it', async () => {
    const port = makePort()
    const pending = port.getAsync({ timeoutMs: 0 })
    // The packet goes to the waiter before the 0 ms timer can fire.
    port.post(6)
    expect((await pending)?.key).toBe(6)
    expect(port.stats().queued).toBe(0)
  })

  it('several pending calls on one thread are all served, even with concurrency 1', async () => {
    const port = makePort(1)
    const pending = [port.getAsync(), port.getAsync(), port.getAsync()]
    expect(port.stats().waiting).toBe(3)
    port.post(1)
    port.post(2)
    port.post(3)
    const packets = (await Promise.all(pending)) as Packet[]
    expect(packets.map((p) => p.key).sort()).toEqual([1, 2, 3])
    expect(port.stats()).toMatchObject({ waiting: 0, queued: 0, dequeued: 3 })
  })

  it('a chain of getAsync calls drains a queue on one thread with concurrency 1', async () => {
    const port = makePort(1)
    for (let i = 0; i < 100; i++) port.post(i)
    const keys: unknown[] = []
    for (let i = 0; i < 100; i++) keys.push((await port.getAsync())?.key)
    expect(keys).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  it('stats().waiting counts async waiters, and forgets them on abort and timeout', async () => {
    const port = makePort()
    const a = new AbortController()
    const first = port.getAsync({ signal: a.signal })
    const second = port.getAsync()
    const third = port.getAsync({ timeoutMs: 0 })
    expect(port.stats().waiting).toBe(3)
    expect(await third).toBeNull()
    expect(port.stats().waiting).toBe(2)
    a.abort()
    await rejection(first)
    expect(port.stats().waiting).toBe(1)
    port.post(1)
    expect((await second)?.key).toBe(1)
    expect(port.stats().waiting).toBe(0)
  })

  it('removes its abort listener once settled', async () => {
    const port = makePort()
    const controller = new AbortController()
    let added = 0
    let removed = 0
    const signal = controller.signal
    const add = signal.addEventListener.bind(signal)
    const remove = signal.removeEventListener.bind(signal)
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++
      add(...args)
    }) as typeof signal.addEventListener
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++
      remove(...args)
    }) as typeof signal.removeEventListener
    port.post(1)
    await port.getAsync({ signal })
    expect(await port.getAsync({ signal, timeoutMs: 0 })).toBeNull()
    expect(added).toBe(2)
    expect(removed).toBe(2)
  })
})
