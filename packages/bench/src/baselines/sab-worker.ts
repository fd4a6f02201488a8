/**
 * Worker entry for the {@link SabQueue} peer rows: the same roles, the same protocol and the
 * same STOP packets as the completion-port worker (`../workers/port-worker.ts`), on the pure-JS
 * queue. `consume-batch` takes up to 256 packets per call, and a batched producer pushes 256
 * per call, each with one compare-and-swap. A queue
 * has no `close()` to wake a blocked thread, so pong exits on an EXIT packet that ping sends.
 */
import { workerData } from 'node:worker_threads'
import { Control, EXIT, STOP, now } from '../harness/control.js'
import { SabQueue, pushKeys, type SabQueueBuffers } from './sab-queue.js'

interface Data {
  role: 'consume-get' | 'consume-batch' | 'produce' | 'ping' | 'pong'
  control: SharedArrayBuffer
  queues: SabQueueBuffers[]
  slot: number
  index: number
  producers: number
  consumers: number
  /** Producers: packets per pushMany (1 = one push() per packet). */
  batch: number
  latency?: SharedArrayBuffer
  /** Consumers poll this long before they park (0 or absent: they park at once). */
  spinMicroseconds?: number
}

const BATCH = 256
const data = workerData as Data
const control = new Control(data.control)
const queues = data.queues.map((buffers) => new SabQueue(buffers, { spinMicroseconds: data.spinMicroseconds ?? 0 }))
const queue = queues[0]!

function consume(max: number): void {
  const out = new Float64Array(max * 3)
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    let count = 0
    let sum = 0
    let stops = 0
    while (stops === 0) {
      const n = queue.popMany(out, max)
      for (let i = 0; i < n; i++) {
        const key = out[i * 3]!
        if (key === STOP) {
          stops++
        } else {
          count++
          sum += key
        }
      }
    }
    const end = now()
    for (let s = 1; s < stops; s++) queue.push(STOP, 0, 0)
    control.report(data.slot, { count, sum, start: 0, end })
  }
}

function produce(): void {
  const buffer = data.batch > 1 ? new Float64Array(data.batch * 3) : undefined
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) return
    const n = control.size
    pushKeys(queue, data.index, data.producers, n, buffer)
    if (control.finishedProducing(data.producers)) {
      for (let c = 0; c < data.consumers; c++) queue.push(STOP, 0, 0)
    }
  }
}

function ping(): void {
  const back = queues[1]!
  const latency = new Float64Array(data.latency!)
  const out = new Float64Array(3)
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) {
      queue.push(EXIT, 0, 0)
      return
    }
    const trips = control.size
    let sum = 0
    const start = now()
    for (let i = 0; i < trips; i++) {
      const sent = performance.now()
      queue.push(i, 0, 0)
      back.pop(out)
      latency[i] = performance.now() - sent
      if (out[0] !== i) throw new Error(`ping: sent ${i}, got ${out[0]} back`)
      sum += i
    }
    control.report(data.slot, { count: trips, sum, start, end: now() })
  }
}

function pong(): void {
  const back = queues[1]!
  const out = new Float64Array(3)
  control.ready()
  for (;;) {
    queue.pop(out)
    if (out[0] === EXIT) return
    back.push(out[0]!, out[1]!, out[2]!)
  }
}

const roles = {
  'consume-get': () => consume(1),
  'consume-batch': () => consume(BATCH),
  produce,
  ping,
  pong,
}
roles[data.role]()
