/**
 * What the io scenario and its workers share: the workloads, their offsets, the gate cells, and
 * how a drained batch of completions is reissued.
 */
import type { CompletionPort, PacketBatch } from '@iocp/core'

/** One workload: `block`-byte reads, random or sequential, `depth` in flight where that applies. */
export interface Workload {
  id: string
  title: string
  block: number
  random: boolean
  depth: number
}

export const WORKLOADS: readonly Workload[] = [
  { id: 'rand4k.1', title: 'random 4 KiB reads, 1 in flight', block: 4096, random: true, depth: 1 },
  { id: 'rand4k.64', title: 'random 4 KiB reads, 64 in flight', block: 4096, random: true, depth: 64 },
  { id: 'seq1m.4', title: 'sequential 1 MiB reads, 4 in flight', block: 1 << 20, random: false, depth: 4 },
]

/** Int32 cells of a multi-worker row: workers ready, the start gate, reads in flight. */
export const READY = 0
export const GO = 1
export const INFLIGHT = 2

/**
 * The workload's offsets, `block`-aligned inside a file of `size` bytes: xorshift-random (seeded
 * by `seed`, so two workers read different blocks), or sequential, wrapping at the end.
 */
export function offsets(size: number, block: number, random: boolean, seed: number): () => number {
  const blocks = Math.max(1, Math.floor(size / block))
  if (!random) {
    let next = (seed - 1) * Math.floor(blocks / 2)
    return () => (next++ % blocks) * block
  }
  let state = (0x9e3779b9 ^ (seed * 0x85ebca6b)) >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return (state % blocks) * block
  }
}

/**
 * Reissues the `n` completed reads of `batch` (each into its own slot, at the next offset): one
 * `read()` for a single one, else one `submit()` of the batch (one native call and one
 * io_uring_enter for all of them), reusing one request object per slot.
 */
export function reissuer(
  port: CompletionPort,
  fd: number,
  slots: number,
  view: (slot: number) => Uint8Array,
): (batch: PacketBatch, n: number, next: () => number) => void {
  const requests: Array<{ op: 'read'; fd: number; buffer: Uint8Array; position: number; overlapped: number }> = []
  const bySlot = Array.from({ length: slots }, (_, s) => ({ op: 'read' as const, fd, buffer: view(s), position: 0, overlapped: s }))
  return (batch, n, next) => {
    if (n === 0) return
    for (let i = 0; i < n; i++) {
      if (batch.code(i) !== undefined) throw new Error(`read failed: ${batch.code(i)}`)
    }
    if (n === 1) {
      const s = batch.overlapped(0) as number
      port.read(fd, bySlot[s]!.buffer, next(), s)
      return
    }
    requests.length = n
    for (let i = 0; i < n; i++) {
      const request = bySlot[batch.overlapped(i) as number]!
      request.position = next()
      requests[i] = request
    }
    port.submit(requests)
  }
}
