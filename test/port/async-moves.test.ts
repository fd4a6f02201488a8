// How async deliveries count when a thread moves between ports or blocks: one port at a time,
// and never counted twice.
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { CompletionPort } from '@iocp/core'

describe('async deliveries and the one-port-at-a-time rule', () => {
  it('a get on another port ends the count of an async delivery', async () => {
    const a = new CompletionPort({ concurrency: 1 })
    const b = new CompletionPort({ concurrency: 1 })
    a.post(1)
    expect((await a.getAsync())?.key).toBe(1)
    expect(a.stats().running).toBe(1)
    expect(b.get(0)).toBeNull()
    expect(a.stats().running).toBe(0)
    a.close()
    b.close()
  })

  it('a getAsync on another port ends the count of a blocking delivery', async () => {
    const a = new CompletionPort({ concurrency: 1 })
    const b = new CompletionPort({ concurrency: 1 })
    a.post(1)
    expect(a.get(0)?.key).toBe(1)
    expect(a.stats().running).toBe(1)
    const pending = b.getAsync({ timeoutMs: 0 })
    expect(a.stats().running).toBe(0)
    expect(await pending).toBeNull()
    a.close()
    b.close()
  })

  it('blocking() with an async fn that takes a delivery counts the thread once', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    port.post(1)
    expect(port.get(0)?.key).toBe(1)
    await port.blocking(async () => {
      expect(port.stats().running).toBe(0)
      port.post(2)
      expect((await port.getAsync())?.key).toBe(2)
    })
    expect(port.stats().running).toBe(1)
    port.close()
  })
})

describe('a delivery on its way to an aborted getAsync when the port closes', () => {
  it('is dropped with a process warning, never silently', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const controller = new AbortController()
    const pending = port.getAsync({ signal: controller.signal })
    port.post(5) // handed to the pending call at once: on its way to this thread's event loop
    controller.abort() // too late to withdraw it: the promise rejects, the packet is in flight
    const closed = port.close() // the queue is empty: close() cannot return it
    expect(closed).toEqual([])
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    const [warning] = (await once(process, 'warning')) as [Error]
    expect(warning.name).toBe('IocpPacketDropped')
    expect(warning.message).toContain('key 5')
  })
})
