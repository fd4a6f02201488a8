/**
 * Worker entry for the io scenario's multi-thread rows (`workerData.mode`):
 *
 * - `readSync`: `fs.readSync` of `block` bytes at the workload's offsets, one at a time, for
 *   `seconds`; reports `{ ops, seconds }`.
 * - `port`: opens the port by `handle` and keeps `depth` reads in flight on the associated `fd`,
 *   its slots `[index * depth, (index + 1) * depth)` of the shared `buffer`; it drains whatever
 *   completions the port gives it (its own or the other worker's), at most `depth` per
 *   `getManyInto`, and reissues the completed slots until its own `seconds` are up, then drains
 *   until no read of any worker is in flight (`cells[INFLIGHT]`); reports `{ ops, seconds }`.
 *   At most `depth` per get, as a worker of the one-thread row takes at most its `depth`: a
 *   worker that takes every queued completion (the other worker's too) leaves the other parked
 *   in `get()`, and the two then take turns instead of running side by side (docs/io.md).
 *
 * Every worker first bumps `cells[READY]` and waits on `cells[GO]`, so that they start together.
 */
import { openSync, readSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { CompletionPort, PacketBatch, type PortHandle } from '@iocp/core'
import { GO, INFLIGHT, READY, offsets, reissuer } from '../scenarios/io-workload.js'

interface Data {
  mode: 'readSync' | 'port'
  path: string
  fd: number
  handle?: PortHandle
  block: number
  random: boolean
  size: number
  depth: number
  index: number
  /** Workers of the row (the shared buffer has `depth` slots per worker). */
  workers: number
  seconds: number
  cells: SharedArrayBuffer
  buffer: SharedArrayBuffer
  /** Where the page-aligned view starts in `buffer`, and its length. */
  bufferOffset: number
  bufferLength: number
}

const data = workerData as Data
const cells = new Int32Array(data.cells)
const next = offsets(data.size, data.block, data.random, data.index + 1)

Atomics.add(cells, READY, 1)
Atomics.notify(cells, READY)
Atomics.wait(cells, GO, 0)

const started = performance.now()
const deadline = started + data.seconds * 1000
let ops = 0
if (data.mode === 'readSync') {
  const fd = openSync(data.path, 'r')
  const buffer = Buffer.alloc(data.block)
  do {
    for (let i = 0; i < 64; i++) {
      readSync(fd, buffer, 0, data.block, next())
      ops++
    }
  } while (performance.now() < deadline)
} else {
  const port = CompletionPort.fromHandle(data.handle!)
  const bytes = new Uint8Array(data.buffer, data.bufferOffset, data.bufferLength)
  const view = (slot: number): Uint8Array => bytes.subarray(slot * data.block, (slot + 1) * data.block)
  const batch = new PacketBatch(data.depth)
  const reissue = reissuer(port, data.fd, data.depth * data.workers, view)
  Atomics.add(cells, INFLIGHT, data.depth)
  for (let s = 0; s < data.depth; s++) port.read(data.fd, view(data.index * data.depth + s), next(), data.index * data.depth + s)
  let running = true
  for (;;) {
    // A timeout, not Infinity: the other worker may be the one that drains the last completions.
    const n = port.getManyInto(batch, 10)
    ops += n
    if (running) reissue(batch, n, next)
    else Atomics.sub(cells, INFLIGHT, n)
    if (running && performance.now() >= deadline) running = false
    if (!running && Atomics.load(cells, INFLIGHT) <= 0) break
  }
}
parentPort!.postMessage({ ops, seconds: (performance.now() - started) / 1000 })
