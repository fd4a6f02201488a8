/**
 * Worker entry for the completion-port rows of the cross-thread scenarios. One role per worker
 * (`workerData.role`):
 *
 * - `consume-get` / `consume-batch`: gated; each round takes packets from the port with `get()`
 *   (one at a time) or `getManyInto()` (up to 256 per call, into a reused {@link PacketBatch})
 *   until a STOP packet, then reports how many it took and the sum of their keys, and waits for
 *   the next round (so it never takes the STOP meant for another consumer). A batch that brings
 *   several STOPs gives the extra ones back to the port, so every consumer ends each round on
 *   exactly one.
 * - `produce`: gated; each round posts its share of keys (`index`, `index + producers`, ...
 *   below `control.size`), with `post()` or, when `batch` > 1, `postMany()` of `batch` packets;
 *   the last producer to finish posts one STOP per consumer.
 * - `ping`: gated; each round makes `control.size` round trips (post to the first port, wait on
 *   the second), timing each one into the shared `latency` buffer, then reports.
 * - `pong`: echoes every packet of the first port to the second until the port is closed.
 */
import { workerData } from 'node:worker_threads'
import { CompletionPort, PacketBatch, type PortHandle } from '@iocp/core'
import { Control, STOP, now } from '../harness/control.js'
import { postKeys } from './feed.js'

interface Data {
  role: 'consume-get' | 'consume-batch' | 'produce' | 'ping' | 'pong'
  control: SharedArrayBuffer
  handles: PortHandle[]
  slot: number
  index: number
  producers: number
  consumers: number
  /** Producers: packets per postMany (1 = one post() per packet). */
  batch: number
  latency?: SharedArrayBuffer
}

const BATCH = 256
const data = workerData as Data
const control = new Control(data.control)
const ports = data.handles.map((handle) => CompletionPort.fromHandle(handle))
const port = ports[0]!

function isClosed(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_IOCP_PORT_CLOSED'
}

function consumeGet(): void {
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    let count = 0
    let sum = 0
    for (;;) {
      const key = port.get()!.key as number
      if (key === STOP) break
      count++
      sum += key
    }
    control.report(data.slot, { count, sum, start: 0, end: now() })
  }
}

function consumeBatch(): void {
  const batch = new PacketBatch(BATCH)
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    let count = 0
    let sum = 0
    let stops = 0
    while (stops === 0) {
      const n = port.getManyInto(batch)
      for (let i = 0; i < n; i++) {
        const key = batch.key(i) as number
        if (key === STOP) {
          stops++
        } else {
          count++
          sum += key
        }
      }
    }
    const end = now()
    for (let s = 1; s < stops; s++) port.post(STOP)
    control.report(data.slot, { count, sum, start: 0, end })
  }
}

function produce(): void {
  const batch = data.batch > 1 ? new PacketBatch(data.batch) : undefined
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    const n = control.size
    postKeys(port, data.index, data.producers, n, batch)
    if (control.finishedProducing(data.producers)) {
      for (let c = 0; c < data.consumers; c++) port.post(STOP)
    }
  }
}

function ping(): void {
  const back = ports[1]!
  const latency = new Float64Array(data.latency!)
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    const trips = control.size
    let sum = 0
    const start = now()
    for (let i = 0; i < trips; i++) {
      const sent = performance.now()
      port.post(i)
      const key = back.get()!.key as number
      latency[i] = performance.now() - sent
      if (key !== i) throw new Error(`ping: sent ${i}, got ${key} back`)
      sum += key
    }
    control.report(data.slot, { count: trips, sum, start, end: now() })
  }
}

function pong(): void {
  const back = ports[1]!
  control.ready()
  for (;;) back.post(port.get()!.key)
}

const roles = { 'consume-get': consumeGet, 'consume-batch': consumeBatch, produce, ping, pong }
try {
  roles[data.role]()
} catch (error) {
  if (!isClosed(error)) throw error
}
