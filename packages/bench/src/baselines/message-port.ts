/**
 * The sending side of the `MessagePort.postMessage` peer, shared by main (main -> workers) and
 * the producer workers (workers -> workers): the cheapest way Node alone moves the same packets.
 */
import type { MessagePort } from 'node:worker_threads'

/** Sends keys `first`, `first + step`, ... below `n` round-robin over `ports`, then a STOP on each. */
export function send(ports: MessagePort[], first: number, step: number, n: number, batch: number): void {
  const fanout = ports.length
  if (batch <= 1) {
    let next = 0
    for (let key = first; key < n; key += step) {
      ports[next]!.postMessage([key, 0, 0])
      if (++next === fanout) next = 0
    }
  } else {
    const buffers = ports.map(() => new Float64Array(batch * 3))
    const fill = new Array<number>(fanout).fill(0)
    let next = 0
    for (let key = first; key < n; key += step) {
      const buffer = buffers[next]!
      let at = fill[next]!
      buffer[at] = key
      buffer[at + 1] = 0
      buffer[at + 2] = 0
      at += 3
      if (at === buffer.length) {
        ports[next]!.postMessage(buffer)
        at = 0
      }
      fill[next] = at
      if (++next === fanout) next = 0
    }
    for (let c = 0; c < fanout; c++) {
      if (fill[c]! > 0) ports[c]!.postMessage(buffers[c]!.subarray(0, fill[c]!))
    }
  }
  for (const port of ports) port.postMessage(null)
}

