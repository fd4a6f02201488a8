// close(): every waiter wakes with PortClosedError (blocked workers and pending getAsync calls
// alike), every method then throws (getAsync rejects), in this thread and the others, the
// packets still queued are returned, and a handle of a closed port no longer opens.
import { describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, PortClosedError } from '@iocp/core'
import { startFixture, until } from '../fixtures/harness.js'
import { thrownBy, useCleanup } from '../fixtures/cleanup.js'

const { makePort, workers } = useCleanup(2)

describe('close()', () => {
  it('returns the queued packets in FIFO order, and [] the second time', () => {
    const port = makePort()
    port.post(1, 10, 100)
    port.post(2n, 20, 200n)
    port.post(3, 30, 300)
    expect(port.close()).toEqual([
      { key: 1, bytes: 10, overlapped: 100, data: undefined },
      { key: 2n, bytes: 20, overlapped: 200n, data: undefined },
      { key: 3, bytes: 30, overlapped: 300, data: undefined },
    ])
    expect(port.close()).toEqual([])
  })

  it('makes every method throw PortClosedError, and getAsync reject with it', async () => {
    const port = makePort()
    port.post(1)
    port.close()
    const calls: Record<string, () => unknown> = {
      post: () => port.post(1),
      postWithData: () => port.post(1, 0, 0, new Uint8Array(1)),
      get: () => port.get(0),
      getInfinite: () => port.get(),
      getMany: () => port.getMany(4, 0),
      getManyInto: () => port.getManyInto(new PacketBatch(4), 0),
      shutdown: () => port.shutdown(),
      stats: () => port.stats(),
      handle: () => port.handle,
      blocking: () => port.blocking(() => 1),
      recoverHeld: () => port.recoverHeld(1),
    }
    for (const [name, call] of Object.entries(calls)) {
      expect(thrownBy(call), name).toBeInstanceOf(PortClosedError)
    }
    let promise: Promise<unknown> | undefined
    expect(() => {
      promise = port.getAsync()
    }).not.toThrow()
    await expect(promise).rejects.toBeInstanceOf(PortClosedError)
    expect(port.close()).toEqual([])
  })

  it('rejects every pending getAsync with PortClosedError', async () => {
    const port = makePort(1)
    const pending = [port.getAsync(), port.getAsync({ timeoutMs: 60_000 }), port.getAsync({ signal: new AbortController().signal })]
    expect(port.stats().waiting).toBe(3)
    expect(port.close()).toEqual([])
    for (const promise of pending) await expect(promise).rejects.toBeInstanceOf(PortClosedError)
  })

  it('wakes a worker blocked in get() with PortClosedError, after which its methods throw too', async () => {
    const port = makePort(1)
    const consumer = startFixture('consumer.mjs', { handle: port.handle })
    workers.push(consumer)
    // The worker is parked in get() once the port counts a waiter.
    await until(() => port.stats().waiting === 1)
    expect(port.close()).toEqual([])
    const done = await consumer.message('done')
    expect(done.error).toMatchObject({ name: 'PortClosedError', code: 'ERR_IOCP_PORT_CLOSED' })
    expect(done.after).toEqual({ post: 'PortClosedError', get: 'PortClosedError', stats: 'PortClosedError' })
    expect(consumer.messages.filter((m) => m.type === 'packet')).toEqual([])
    expect(await consumer.exited).toBe(0)
  })

  it('wakes every blocked worker, getMany and getAsync ones included', async () => {
    const port = makePort(4)
    const modes = ['get', 'get', 'getMany', 'getAsync'] as const
    for (const mode of modes) workers.push(startFixture('consumer.mjs', { handle: port.handle, mode }))
    await until(() => port.stats().waiting === modes.length)
    port.close()
    for (const consumer of workers) {
      const done = await consumer.message('done')
      expect(done.error).toMatchObject({ name: 'PortClosedError' })
    }
  })

  it('closes the port for every thread: a close in a worker is seen here', async () => {
    const port = makePort(1)
    port.post(7)
    const closer = startFixture('closer.mjs', { handle: port.handle })
    workers.push(closer)
    const closed = await closer.message('closed')
    expect(closed.packets).toEqual([{ key: 7, bytes: 0, overlapped: 0, data: undefined }])
    expect(thrownBy(() => port.post(1))).toBeInstanceOf(PortClosedError)
    expect(thrownBy(() => port.get())).toBeInstanceOf(PortClosedError)
    expect(thrownBy(() => port.stats())).toBeInstanceOf(PortClosedError)
    await expect(port.getAsync()).rejects.toBeInstanceOf(PortClosedError)
    expect(port.close()).toEqual([])
  })

  it('fromHandle of a closed port throws PortClosedError', () => {
    const port = makePort()
    const handle = port.handle
    port.close()
    expect(thrownBy(() => CompletionPort.fromHandle(handle))).toBeInstanceOf(PortClosedError)
  })

  it('a port opened with fromHandle is closed by close() on the original, and the other way round', () => {
    const port = makePort()
    const other = CompletionPort.fromHandle(port.handle)
    other.post(5)
    expect(other.close()).toEqual([{ key: 5, bytes: 0, overlapped: 0, data: undefined }])
    expect(thrownBy(() => port.get(0))).toBeInstanceOf(PortClosedError)
    expect(port.close()).toEqual([])
  })
})
