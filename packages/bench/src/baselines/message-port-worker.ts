/**
 * Worker entry for the `MessagePort.postMessage` peer rows: what a user gets from Node alone.
 * Roles (`workerData.role`):
 *
 * - `consume`: listens on its `MessagePort`s (one per producer); a message is one packet
 *   `[key, bytes, overlapped]`, a batch (a `Float64Array` of such triples), or `null` (STOP).
 *   After a STOP from every producer it reports and starts counting the next round. It exits
 *   when its ports close.
 * - `produce`: gated; each round sends its share of keys round-robin over its ports (one per
 *   consumer), one message per packet or in batches of 256, then a STOP on every port.
 * - `ping` / `pong`: round trips over one `MessageChannel`; ping times each trip into the
 *   shared `latency` buffer.
 */
import { workerData, type MessagePort } from 'node:worker_threads'
import { Control, now } from '../harness/control.js'
import { send } from './message-port.js'

interface Data {
  role: 'consume' | 'produce' | 'ping' | 'pong'
  control: SharedArrayBuffer
  ports: MessagePort[]
  slot: number
  index: number
  producers: number
  batch: number
  latency?: SharedArrayBuffer
}

const data = workerData as Data
const control = new Control(data.control)
const ports = data.ports

function consume(): void {
  let count = 0
  let sum = 0
  let stops = 0
  const onMessage = (message: number[] | Float64Array | null): void => {
    if (message === null) {
      if (++stops < data.producers) return
      control.report(data.slot, { count, sum, start: 0, end: now() })
      count = sum = stops = 0
    } else if (message instanceof Float64Array) {
      for (let i = 0; i < message.length; i += 3) {
        count++
        sum += message[i]!
      }
    } else {
      count++
      sum += message[0]!
    }
  }
  for (const port of ports) port.on('message', onMessage)
  control.ready()
}

function produce(): void {
  control.ready()
  for (let round = 0; ; ) {
    round = control.nextRound(round)
    if (round < 0) {
      for (const port of ports) port.close()
      return
    }
    send(ports, data.index, data.producers, control.size, data.batch)
  }
}

async function ping(): Promise<void> {
  const port = ports[0]!
  const latency = new Float64Array(data.latency!)
  // One listener for the worker's life keeps the port (and so the worker) referenced while it
  // waits for the next round; each round installs its own handler.
  let onReply: (key: number) => void = () => {}
  port.on('message', (key: number) => onReply(key))
  control.ready()
  for (let round = 0; ; ) {
    round = await control.nextRoundAsync(round)
    if (round < 0) {
      port.close()
      return
    }
    const trips = control.size
    const start = now()
    let sum = 0
    await new Promise<void>((resolve, reject) => {
      let i = 0
      let sent = performance.now()
      onReply = (key) => {
        latency[i] = performance.now() - sent
        if (key !== i) {
          reject(new Error(`ping: sent ${i}, got ${key} back`))
          return
        }
        sum += key
        if (++i === trips) {
          resolve()
          return
        }
        sent = performance.now()
        port.postMessage(i)
      }
      port.postMessage(0)
    })
    control.report(data.slot, { count: trips, sum, start, end: now() })
  }
}

function pong(): void {
  const port = ports[0]!
  port.on('message', (key: number) => port.postMessage(key))
  control.ready()
}

const roles = { consume, produce, ping, pong }
await roles[data.role]()
