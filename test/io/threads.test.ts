// Overlapped I/O from worker threads: any thread that opened the port issues reads on an fd the
// port is associated with (an association belongs to the port, as on Windows), the completions
// reach whichever thread dequeues them, and a worker terminated with reads in flight neither
// crashes nor leaks them: its teardown cancels them and their ECANCELED packets are queued.
import { closeSync, openSync } from 'node:fs'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { CompletionPort } from '@iocp/core'
import { startFixture } from '../fixtures/harness.js'
import { expectedByte, makeTestFile, pauseIo } from '../fixtures/io-harness.js'

const file = makeTestFile(64 * 1024)
afterAll(() => file.cleanup())
afterEach(() => pauseIo(false))

describe('overlapped I/O across threads', () => {
  it('two workers issue and drain their own reads; the bytes land in shared memory', async () => {
    const port = new CompletionPort({ concurrency: 2 })
    const fd = openSync(file.path, 'r')
    port.associate(fd, 3)
    const buffers = [new SharedArrayBuffer(64 * 200), new SharedArrayBuffer(64 * 200)]
    const workers = buffers.map((buffer) =>
      startFixture('io-reader.mjs', { handle: port.handle, fd, count: 200, buffer, mode: 'drain' }),
    )
    const done = await Promise.all(workers.map((w) => w.message('done')))
    await Promise.all(workers.map((w) => w.exited))
    // Each worker took 200 completions, whoever's they were: together, every byte was read.
    expect(done.reduce((sum, d) => sum + (d.bytes as number), 0)).toBe(2 * 200 * 64)
    for (const buffer of buffers) {
      const view = new Uint8Array(buffer)
      for (let i = 0; i < view.length; i += 61) expect(view[i]).toBe(expectedByte(i))
    }
    expect(port.stats().queued).toBe(0)
    port.close()
    closeSync(fd)
  })

  it('the main thread dequeues what a worker issued', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const fd = openSync(file.path, 'r')
    port.associate(fd, 4)
    const buffer = new SharedArrayBuffer(64 * 50)
    const worker = startFixture('io-reader.mjs', { handle: port.handle, fd, count: 50, buffer, mode: 'leave' })
    await worker.message('issued')
    const overlapped = new Set<number>()
    for (let i = 0; i < 50; i++) {
      const packet = (await port.getAsync())!
      expect(packet).toMatchObject({ key: 4, bytes: 64 })
      overlapped.add(packet.overlapped as number)
    }
    expect(overlapped.size).toBe(50)
    expect(new Uint8Array(buffer)[64 * 49]).toBe(expectedByte(64 * 49))
    await worker.worker.terminate()
    port.close()
    closeSync(fd)
  })

  it('a worker terminated with reads in flight: they complete as ECANCELED packets, nothing leaks', async () => {
    const port = new CompletionPort({ concurrency: 1 })
    const fd = openSync(file.path, 'r')
    port.associate(fd, 5)
    pauseIo(true) // the worker's reads cannot start
    const worker = startFixture('io-reader.mjs', {
      handle: port.handle,
      fd,
      count: 20,
      buffer: new SharedArrayBuffer(64 * 20),
      mode: 'leave',
    })
    await worker.message('issued')
    await worker.worker.terminate() // its teardown cancels its reads and waits for them
    const packets = port.getMany(20, 0)
    expect(packets).toHaveLength(20)
    expect(packets.every((p) => p.code === 'ECANCELED' && p.key === 5)).toBe(true)
    expect(port.stats().io.inFlight).toBe(0)
    port.close()
    closeSync(fd)
  })
})
