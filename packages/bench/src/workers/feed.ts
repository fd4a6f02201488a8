/**
 * How a producer feeds the completion port in the cross-thread scenarios, shared by main and the
 * producer workers: keys `first`, `first + step`, ... below `n`, one `post()` per packet, or, for
 * the batched cases, `postMany()` of a reused {@link PacketBatch} (one lock per batch, nothing
 * allocated per packet).
 */
import type { CompletionPort, PacketBatch } from '@iocp/core'

export function postKeys(port: CompletionPort, first: number, step: number, n: number, batch?: PacketBatch): void {
  if (batch === undefined) {
    for (let key = first; key < n; key += step) port.post(key)
    return
  }
  batch.clear()
  for (let key = first; key < n; key += step) {
    if (batch.push(key) === batch.capacity) {
      port.postMany(batch)
      batch.clear()
    }
  }
  if (batch.length > 0) port.postMany(batch)
  batch.clear()
}
