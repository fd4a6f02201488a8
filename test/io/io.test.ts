// Overlapped file I/O (docs/io.md): reads, writes and fsyncs complete to the port as packets
// { key, bytes, overlapped } (with `code` when they fail), cancellation completes pending ones
// with ECANCELED, and closing the fd or the port while I/O is in flight loses nothing. CI runs
// this file once per backend (IOCP_IO_BACKEND=io_uring / thread-pool); operations are held in
// flight with the backends' pause hook, never with sleeps.
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PortClosedError, allocateIoBuffer, type Packet } from '@iocp/core'
import { expectedByte, forcedBackend, makeTestFile, pauseIo, sharedBytes } from '../fixtures/io-harness.js'

/** `new SharedArrayBuffer(length, { maxByteLength })`, which Node 20's TypeScript lib does not declare. */
function growableShared(length: number, maxByteLength: number): SharedArrayBuffer {
  const Growable = SharedArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => SharedArrayBuffer
  return new Growable(length, { maxByteLength })
}

const SIZE = 256 * 1024 + 100 // not a multiple of 4096
const file = makeTestFile(SIZE)
afterAll(() => file.cleanup())
afterEach(() => pauseIo(false))

function openPort(): { port: CompletionPort; fd: number } {
  const port = new CompletionPort({ concurrency: 1 })
  const fd = openSync(file.path, 'r+')
  port.associate(fd, 7)
  return { port, fd }
}

function takeAll(port: CompletionPort, count: number): Packet[] {
  const got: Packet[] = []
  while (got.length < count) got.push(...port.getMany(count - got.length))
  return got
}

describe('overlapped reads and writes', () => {
  it('runs on the backend it was asked for, and names it in stats()', () => {
    const { port, fd } = openPort()
    const backend = port.stats().io.backend
    if (forcedBackend !== undefined && forcedBackend !== 'auto') expect(backend).toBe(forcedBackend)
    else expect(['io_uring', 'thread-pool']).toContain(backend)
    port.close()
    closeSync(fd)
  })

  it('completes 400 reads in flight at once, each once, with its bytes in the shared buffer', () => {
    const { port, fd } = openPort()
    const n = 400
    const buffers = Array.from({ length: n }, () => sharedBytes(4096))
    const offsets = Array.from({ length: n }, (_, i) => (i * 7919) % SIZE)
    for (let i = 0; i < n; i++) port.read(fd, buffers[i]!, offsets[i]!, i)
    const seen = new Array<number>(n).fill(0)
    for (const packet of takeAll(port, n)) {
      const i = packet.overlapped as number
      seen[i]! += 1
      expect(packet.key).toBe(7)
      expect(packet.code).toBeUndefined()
      expect(packet.bytes).toBe(Math.min(4096, SIZE - offsets[i]!))
      for (let k = 0; k < packet.bytes; k += 97) expect(buffers[i]![k]).toBe(expectedByte(offsets[i]! + k))
    }
    expect(seen.every((count) => count === 1)).toBe(true)
    expect(port.stats().queued).toBe(0)
    port.close()
    closeSync(fd)
  })

  it('writes, fsyncs and reads back; bigint keys and overlapped values keep all 64 bits', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const fd = openSync(file.path, 'r+')
    port.associate(fd, 2n ** 64n - 1n)
    const text = sharedBytes(5)
    text.set([104, 101, 108, 108, 111])
    port.write(fd, text, SIZE, 2n ** 63n)
    expect(port.get()).toEqual({ key: 2n ** 64n - 1n, bytes: 5, overlapped: 2n ** 63n, data: undefined })
    port.fsync(fd, 3)
    expect(port.get()).toEqual({ key: 2n ** 64n - 1n, bytes: 0, overlapped: 3, data: undefined })
    const back = new DataView(new SharedArrayBuffer(16))
    port.read(fd, back, SIZE, 4)
    expect(port.get()!.bytes).toBe(5) // a short read at the end of the file
    expect(new Uint8Array(back.buffer, 0, 5)).toEqual(new Uint8Array([104, 101, 108, 108, 111]))
    port.read(fd, back, SIZE + 5, 5)
    expect(port.get()!.bytes).toBe(0) // at the end of the file
    expect(readFileSync(file.path).subarray(SIZE).toString()).toBe('hello')
    port.close()
    closeSync(fd)
  })

  it('submits a batch in one call, and a bad request anywhere queues nothing', () => {
    const { port, fd } = openPort()
    const a = sharedBytes(100)
    const b = sharedBytes(100)
    const submittedBefore = port.stats().io.submitted
    expect(() =>
      port.submit([
        { op: 'read', fd, buffer: a, position: 0, overlapped: 1 },
        { op: 'read', fd, buffer: b, position: -1, overlapped: 2 },
      ]),
    ).toThrow(/requests\[1\]\.position must be a file offset/)
    expect(() => port.submit([{ op: 'read', fd, buffer: a, position: 0, overlapped: 1 }, { op: 'fsync', fd: 999, overlapped: 2 }])).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    )
    expect(port.stats().io.submitted).toBe(submittedBefore)
    expect(port.get(0)).toBeNull()
    port.submit([
      { op: 'read', fd, buffer: a, position: 4096, overlapped: 1, length: 50 },
      { op: 'read', fd, buffer: b, position: 8192, overlapped: 2 },
      { op: 'fsync', fd, overlapped: 3 },
    ])
    const got = takeAll(port, 3).sort((x, y) => (x.overlapped as number) - (y.overlapped as number))
    expect(got.map((p) => [p.overlapped, p.bytes])).toEqual([[1, 50], [2, 100], [3, 0]])
    expect(a[0]).toBe(expectedByte(4096))
    expect(b[99]).toBe(expectedByte(8192 + 99))
    port.close()
    closeSync(fd)
  })

  it('a batch carries bigint overlapped values, views of every kind and several buffers, each to its own bytes', () => {
    // The batch path writes each request into a flat layout (a bigint split in two halves, a
    // view as (buffer, offset)); a Uint8Array over a SharedArrayBuffer takes the quick check,
    // anything else (a DataView, a Float64Array, a Buffer-free Uint16Array slice) the named one.
    const { port, fd } = openPort()
    const shared = new SharedArrayBuffer(4 * 4096)
    const other = new SharedArrayBuffer(4096)
    const big = (1n << 64n) - 3n
    port.submit([
      { op: 'read', fd, buffer: new Uint8Array(shared, 4096, 100), position: 0, overlapped: big },
      { op: 'read', fd, buffer: new DataView(shared, 8192, 64), position: 500, overlapped: 2 ** 53 - 1 },
      { op: 'read', fd, buffer: new Float64Array(other, 8, 8), position: 1000, overlapped: 3n },
      { op: 'fsync', fd, overlapped: (1n << 63n) + 5n },
      { op: 'read', fd, buffer: new Uint16Array(shared, 3 * 4096 + 2, 5), position: 2000, overlapped: 5, length: 7 },
    ])
    const got = takeAll(port, 5)
    const byOverlapped = new Map(got.map((p) => [String(p.overlapped), p]))
    expect([...byOverlapped.keys()].sort()).toEqual([String(big), String(2 ** 53 - 1), '3', String((1n << 63n) + 5n), '5'].sort())
    expect(typeof byOverlapped.get(String(big))!.overlapped).toBe('bigint')
    expect(typeof byOverlapped.get(String(2 ** 53 - 1))!.overlapped).toBe('number')
    expect(got.map((p) => p.code)).toEqual([undefined, undefined, undefined, undefined, undefined])
    expect(byOverlapped.get(String(big))!.bytes).toBe(100)
    expect(byOverlapped.get('5')!.bytes).toBe(7)
    const bytes = new Uint8Array(shared)
    expect(bytes[4096]).toBe(expectedByte(0))
    expect(bytes[4096 + 99]).toBe(expectedByte(99))
    expect(bytes[4096 + 100]).toBe(0) // nothing past the view
    expect(bytes[8192 + 63]).toBe(expectedByte(500 + 63))
    expect(new Uint8Array(other)[8]).toBe(expectedByte(1000))
    expect(new Uint8Array(other)[7]).toBe(0)
    expect(bytes[3 * 4096 + 2 + 6]).toBe(expectedByte(2006))
    expect(bytes[3 * 4096 + 2 + 7]).toBe(0) // length 7 of the 10-byte view
    port.close()
    closeSync(fd)
  })

  it('a batch with an unknown request key, or a bad value after good ones, is refused whole and names it', () => {
    const { port, fd } = openPort()
    const a = sharedBytes(64)
    const good = { op: 'read' as const, fd, buffer: a, position: 0, overlapped: 1 }
    const submittedBefore = port.stats().io.submitted
    expect(() => port.submit([good, { ...good, overlapped: 2, posiiton: 5 } as never])).toThrow(/requests\[1\]/)
    expect(() => port.submit([good, good, { ...good, overlapped: -1 }])).toThrow(/requests\[2\]\.overlapped/)
    expect(() => port.submit([good, { ...good, length: 65 }])).toThrow(/requests\[1\]\.length/)
    expect(() => port.submit([good, { ...good, overlapped: 1n << 64n }])).toThrow(/requests\[1\]\.overlapped/)
    expect(() => port.submit([good, { ...good, buffer: new Uint8Array(64) }])).toThrow(/requests\[1\]\.buffer/)
    expect(port.stats().io.submitted).toBe(submittedBefore)
    expect(port.get(0)).toBeNull()
    port.close()
    closeSync(fd)
  })

  it('a batch may mix files: each request completes with its own file’s key', () => {
    const { port, fd } = openPort()
    const other = openSync(file.path, 'r')
    port.associate(other, 8)
    const views = [sharedBytes(8), sharedBytes(8), sharedBytes(8)]
    port.submit([
      { op: 'read', fd, buffer: views[0]!, position: 0, overlapped: 0 },
      { op: 'read', fd: other, buffer: views[1]!, position: 8, overlapped: 1 },
      { op: 'read', fd, buffer: views[2]!, position: 16, overlapped: 2 },
    ])
    const got = takeAll(port, 3).sort((x, y) => (x.overlapped as number) - (y.overlapped as number))
    expect(got.map((p) => [p.key, p.bytes])).toEqual([[7, 8], [8, 8], [7, 8]])
    expect(views.map((v) => v[0])).toEqual([expectedByte(0), expectedByte(8), expectedByte(16)])
    port.close()
    closeSync(fd)
    closeSync(other)
  })

  it('delivers I/O completions to getAsync on the main thread', async () => {
    const { port, fd } = openPort()
    const pending = port.getAsync()
    const buffer = sharedBytes(10)
    port.read(fd, buffer, 20, 9)
    expect(await pending).toEqual({ key: 7, bytes: 10, overlapped: 9, data: undefined })
    expect(buffer[0]).toBe(expectedByte(20))
    port.close()
    closeSync(fd)
  })

  it('reports a failed operation as a packet with Node’s error code and bytes 0', () => {
    const port = new CompletionPort({ concurrency: 1 })
    const fd = openSync(file.path, 'r') // read-only: a write fails in the kernel
    port.associate(fd, 1)
    port.write(fd, sharedBytes(4), 0, 11)
    expect(port.get()).toEqual({ key: 1, bytes: 0, overlapped: 11, data: undefined, code: 'EBADF' })
    port.close()
    closeSync(fd)
  })
})

describe('bad input is refused with an error that names it, and nothing is queued', () => {
  it('refuses buffers that cannot be safe, lengths and positions out of range', () => {
    const { port, fd } = openPort()
    const good = sharedBytes(16)
    expect(() => port.read(fd, new Uint8Array(16), 0, 1)).toThrow(/buffer must be a view over a SharedArrayBuffer/)
    expect(() => port.read(fd, new Uint8Array(growableShared(8, 16)), 0, 1)).toThrow(
      /fixed-length SharedArrayBuffer/,
    )
    expect(() => port.read(fd, 'text' as never, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
    expect(() => port.read(fd, good, 0, 1, 17)).toThrow(/length must be at most buffer.byteLength \(16\): the buffer is too small/)
    expect(() => port.read(fd, good, -1, 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
    expect(() => port.read(fd, good, 1.5, 1)).toThrow(/position/)
    expect(() => port.read(fd, good, 2 ** 53, 1)).toThrow(/position/)
    expect(() => port.read(-1, good, 0, 1)).toThrow(/fd must be a file descriptor/)
    expect(() => port.read(fd, good, 0, -1)).toThrow(/overlapped/)
    expect(port.stats().io.submitted).toBeGreaterThanOrEqual(0)
    expect(port.get(0)).toBeNull()
    port.close()
    closeSync(fd)
  })

  it('refuses unassociated, closed and non-file descriptors, a second association and a bounded port', () => {
    const { port, fd } = openPort()
    const other = openSync(file.path, 'r')
    expect(() => port.read(other, sharedBytes(4), 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_IOCP_NOT_ASSOCIATED', fd: other }))
    expect(() => port.associate(fd, 8)).toThrow(expect.objectContaining({ code: 'ERR_IOCP_ALREADY_ASSOCIATED' }))
    expect(() => port.associate(123456, 8)).toThrow(expect.objectContaining({ code: 'EBADF' }))
    const stdinLike = openSync('/dev/null', 'r') // a character device, not a file
    expect(() => port.associate(stdinLike, 8)).toThrow(expect.objectContaining({ code: 'ERR_IOCP_NOT_A_FILE' }))
    closeSync(stdinLike)
    const bounded = new CompletionPort({ concurrency: 1, capacity: 10 })
    expect(() => bounded.associate(other, 1)).toThrow(expect.objectContaining({ code: 'ERR_IOCP_IO_CAPACITY' }))
    bounded.close()
    expect(() => new CompletionPort({ io: 'kqueue' as never })).toThrow(/options.io must be 'auto', 'io_uring' or 'thread-pool'/)
    closeSync(other)
    expect(port.get(0)).toBeNull()
    port.close()
    expect(() => port.read(fd, sharedBytes(4), 0, 1)).toThrow(PortClosedError)
    expect(() => port.associate(fd, 1)).toThrow(PortClosedError)
    closeSync(fd)
  })
})

describe('cancellation and teardown with I/O in flight', () => {
  it('cancel(fd, overlapped) and cancel(fd) complete pending operations with ECANCELED', () => {
    const { port, fd } = openPort()
    pauseIo(true) // nothing starts: all ten reads stay pending
    for (let i = 0; i < 10; i++) port.read(fd, sharedBytes(64), i * 64, i)
    expect(port.cancel(fd, 3)).toBe(1)
    expect(port.get()).toEqual({ key: 7, bytes: 0, overlapped: 3, data: undefined, code: 'ECANCELED' })
    expect(port.cancel(fd)).toBe(9)
    const rest = takeAll(port, 9)
    expect(rest.every((p) => p.code === 'ECANCELED')).toBe(true)
    expect(rest.map((p) => p.overlapped).sort()).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9])
    expect(port.cancel(fd)).toBe(0) // nothing in flight any more
    pauseIo(false)
    port.close()
    closeSync(fd)
  })

  it('an fd closed while I/O is in flight: the I/O still completes, later calls get EBADF', () => {
    const { port, fd } = openPort()
    pauseIo(true)
    const buffer = sharedBytes(32)
    port.read(fd, buffer, 1000, 1)
    closeSync(fd) // the port runs the I/O on its own duplicate of fd
    pauseIo(false)
    expect(port.get()).toEqual({ key: 7, bytes: 32, overlapped: 1, data: undefined })
    expect(buffer[0]).toBe(expectedByte(1000))
    expect(() => port.read(fd, buffer, 0, 2)).toThrow(expect.objectContaining({ code: 'EBADF' }))
    port.dissociate(fd)
    port.close()
  })

  it('an fd number closed and reused by another file never reads the old file', () => {
    const { port, fd } = openPort()
    const buffer = sharedBytes(16)
    port.read(fd, buffer, 0, 1) // on io_uring this registers the file in one of the ring's slots
    expect(port.get()).toMatchObject({ key: 7, bytes: 16, overlapped: 1 })
    closeSync(fd) // no dissociate: the association (and its duplicate) stays
    const other = makeTestFile(64)
    writeFileSync(other.path, Buffer.alloc(64, 0xab))
    const reused = openSync(other.path, 'r')
    try {
      expect(reused).toBe(fd)
      // Another file under the old number is not associated: nothing reads the old file through it.
      expect(() => port.read(reused, buffer, 0, 2)).toThrow(expect.objectContaining({ code: 'ERR_IOCP_NOT_ASSOCIATED', fd }))
      port.associate(reused, 8) // the stale association gives way
      buffer.fill(0)
      port.read(reused, buffer, 0, 3)
      expect(port.get()).toEqual({ key: 8, bytes: 16, overlapped: 3, data: undefined })
      expect([...buffer]).toEqual(new Array(16).fill(0xab))
    } finally {
      port.close()
      closeSync(reused)
      other.cleanup()
    }
  })

  it('a port closed while I/O is in flight returns the cancelled completions from close()', () => {
    const { port, fd } = openPort()
    const witness = new CompletionPort({ concurrency: 1 })
    pauseIo(true)
    for (let i = 0; i < 5; i++) port.read(fd, sharedBytes(64), 0, i)
    const left = port.close()
    expect(left.map((p) => [p.overlapped, p.code])).toEqual(
      expect.arrayContaining([0, 1, 2, 3, 4].map((i) => [i, 'ECANCELED'])),
    )
    expect(left).toHaveLength(5)
    pauseIo(false)
    // The backend's counters are process-wide: nothing of this port is still in flight.
    const other = openSync(file.path, 'r')
    witness.associate(other, 1)
    expect(witness.stats().io.inFlight).toBe(0)
    witness.close()
    closeSync(other)
    closeSync(fd)
  })

  it('shutdown cancels I/O in flight; its packets are drained before PortClosedError', () => {
    const { port, fd } = openPort()
    pauseIo(true)
    port.read(fd, sharedBytes(8), 0, 1)
    port.read(fd, sharedBytes(8), 8, 2)
    port.shutdown()
    pauseIo(false)
    expect(takeAll(port, 2).map((p) => p.code)).toEqual(['ECANCELED', 'ECANCELED'])
    expect(() => port.get()).toThrow(PortClosedError)
    expect(() => port.read(fd, sharedBytes(8), 0, 3)).toThrow(PortClosedError)
    port.close()
    closeSync(fd)
  })
})

describe('allocateIoBuffer', () => {
  it('gives page-aligned shared views that read like any other', () => {
    const { port, fd } = openPort()
    for (const length of [1, 4096, 1 << 20]) {
      const view = allocateIoBuffer(length)
      expect(view.length).toBe(length)
      expect(Object.prototype.toString.call(view.buffer)).toBe('[object SharedArrayBuffer]')
      port.read(fd, view, 4096, length)
      expect(port.get()!.bytes).toBe(Math.min(length, statSync(file.path).size - 4096))
      expect(view[0]).toBe(expectedByte(4096))
    }
    expect(() => allocateIoBuffer(-1)).toThrow(/length must be an integer/)
    port.close()
    closeSync(fd)
  })
})
