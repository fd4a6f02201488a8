/** What the io scenario and its workers share: the workloads, their offsets, the gate cells. */

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
