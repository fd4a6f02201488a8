// shutdown(): a graceful drain. Posts are refused at once; what is queued is still delivered,
// in order, to every kind of getter and to threads that open the port afterwards; once the
// queue is empty every waiter wakes with PortClosedError. close() still works afterwards.
import { describe, expect, it } from 'vitest'
import { CompletionPort, PacketBatch, PortClosedError, type Packet } from '@iocp/core'
import { startFixture, until } from '../fixtures/harness.js'
import { thrownBy, useCleanup } from '../fixtures/cleanup.js'

const { makePort, workers } = useCleanup(1)

describe('shutdown()', () => {
  it('refuses posts, drains what is queued in order, then throws PortClosedError', () => {
    const port = makePort()
    port.post(1)
    port.post(2n)
    port.post(3, 0, 0, new Uint8Array([3]))
    port.shutdown()
    expect(port.stats()).toMatchObject({ state: 'shutdown', queued: 3 })
    expect(thrownBy(() => port.post(4))).toBeInstanceOf(PortClosedError)
    expect(thrownBy(() => port.post(4n, 0, 0, new Uint8Array(1)))).toBeInstanceOf(PortClosedError)
    expect(port.stats().posted).toBe(3)

    expect(port.get(0)?.key).toBe(1)
    expect(port.getMany(8, 0).map((p) => p.key)).toEqual([2n, 3])
    // Drained: no waiting, even with an infinite timeout.
    expect(thrownBy(() => port.get())).toBeInstanceOf(PortClosedError)
    expect(thrownBy(() => port.getMany(2))).toBeInstanceOf(PortClosedError)
    expect(thrownBy(() => port.getManyInto(new PacketBatch(2)))).toBeInstanceOf(PortClosedError)
    expect(port.close()).toEqual([])
  })

  it('is idempotent', () => {
    const port = makePort()
    port.shutdown()
    expect(() => port.shutdown()).not.toThrow()
    expect(port.stats().state).toBe('shutdown')
  })

  it('throws PortClosedError after close()', () => {
    const port = makePort()
    port.close()
    expect(thrownBy(() => port.shutdown())).toBeInstanceOf(PortClosedError)
  })

  it('close() after shutdown() returns what was not drained', () => {
    const port = makePort()
    port.post(1)
    port.post(2)
    port.shutdown()
    expect(port.get(0)?.key).toBe(1)
    expect(port.close()).toEqual([{ key: 2, bytes: 0, overlapped: 0, data: undefined }])
  })

  it('getAsync resolves while packets are left, then rejects with PortClosedError', async () => {
    const port = makePort()
    port.post(1)
    port.shutdown()
    expect((await port.getAsync())?.key).toBe(1)
    await expect(port.getAsync()).rejects.toBeInstanceOf(PortClosedError)
  })

  it('wakes a pending getAsync with PortClosedError when the queue is already empty', async () => {
    const port = makePort()
    const pending = port.getAsync()
    expect(port.stats().waiting).toBe(1)
    port.shutdown()
    await expect(pending).rejects.toBeInstanceOf(PortClosedError)
  })

  it('wakes a worker blocked in get() on an empty port with PortClosedError', async () => {
    const port = makePort()
    const consumer = startFixture('consumer.mjs', { handle: port.handle })
    workers.push(consumer)
    await until(() => port.stats().waiting === 1)
    port.shutdown()
    const done = await consumer.message('done')
    expect(done.error).toMatchObject({ name: 'PortClosedError', code: 'ERR_IOCP_PORT_CLOSED' })
    expect(done.after).toMatchObject({ post: 'PortClosedError', get: 'PortClosedError' })
  })

  it('a thread that opens the port after shutdown drains what is left, then sees PortClosedError', async () => {
    const port = makePort()
    for (let i = 0; i < 5; i++) port.post(i, i)
    const handle = port.handle
    port.shutdown()
    const consumer = startFixture('consumer.mjs', { handle, mode: 'getMany', max: 2 })
    workers.push(consumer)
    const done = await consumer.message('done')
    expect(done.error).toMatchObject({ name: 'PortClosedError' })
    const received = consumer.messages.filter((m) => m.type === 'packet').map((m) => (m.packet as Packet).key)
    expect(received).toEqual([0, 1, 2, 3, 4])
    expect(port.stats()).toMatchObject({ queued: 0, dequeued: 5 })
  })

  it('fromHandle works on a port that is shut down but not closed', () => {
    const port = makePort()
    port.post(9)
    port.shutdown()
    const other = CompletionPort.fromHandle(port.handle)
    expect(other.get(0)?.key).toBe(9)
    expect(thrownBy(() => other.get(0))).toBeInstanceOf(PortClosedError)
  })
})
