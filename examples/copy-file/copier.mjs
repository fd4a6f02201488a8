// A copy worker: blocks in get() on the copy's port and drives the pipeline, one completion at a
// time, as the threads of the classic IOCP file-copy sample do.
//
// Protocol (workerData: { handle, src, dst, size, blockSize, depth, workers, shared, slots,
// buffer, bufferOffset }: the slots' bytes start at bufferOffset in buffer):
//   - a read completion (key READ) on slot s issues the write of the bytes it read, from the same
//     buffer, at the same offset;
//   - a write completion (key WRITE) on slot s advances the slot: the rest of its block if the
//     write was short, else the next unclaimed block (shared[NEXT] hands blocks out), else the
//     slot retires. The worker that retires the last slot posts one STOP packet per worker;
//   - a failed completion records its code in shared[ERROR] and stops everybody the same way.
// Each worker exits on its STOP packet. The shared `copied` cell counts bytes written (progress).
import { workerData } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'
import { ERROR, NEXT, READ, RETIRED, STOP, WRITE, errorIndex, sharedViews, slotOffset } from './protocol.mjs'

const { handle, src, dst, size, blockSize, depth, workers, shared, slots, buffer, bufferOffset } = workerData
const port = CompletionPort.fromHandle(handle)
const bytes = new Uint8Array(buffer, bufferOffset, depth * blockSize)
const { cells, copied } = sharedViews(shared)
// Per slot: [offset, remaining] of the block it is copying, as doubles (offsets can pass 2^31).
const slot = new Float64Array(slots)

function view(s, length) {
  return bytes.subarray(s * blockSize, s * blockSize + length)
}

function retire() {
  if (Atomics.add(cells, RETIRED, 1) + 1 === depth) {
    for (let i = 0; i < workers; i++) port.post(STOP)
  }
}

/** Starts slot s on its next block, or retires it. */
function nextBlock(s) {
  const block = Atomics.add(cells, NEXT, 1)
  const offset = block * blockSize
  if (offset >= size) return retire()
  slot[slotOffset(s)] = offset
  slot[slotOffset(s) + 1] = Math.min(blockSize, size - offset)
  port.read(src, view(s, slot[slotOffset(s) + 1]), offset, s)
}

function fail(code) {
  if (Atomics.compareExchange(cells, ERROR, 0, errorIndex(code)) === 0) {
    for (let i = 0; i < workers; i++) port.post(STOP)
  }
}

for (;;) {
  const packet = port.get()
  if (packet.key === STOP) break
  if (Atomics.load(cells, ERROR) !== 0) continue // stopping: drain without issuing more
  const s = packet.overlapped
  if (packet.code !== undefined) {
    fail(packet.code)
    continue
  }
  const offset = slot[slotOffset(s)]
  if (packet.key === READ) {
    if (packet.bytes === 0) {
      fail('EFILECHANGED') // the source ended before its size: it shrank while being copied
      continue
    }
    port.write(dst, view(s, packet.bytes), offset, s)
  } else if (packet.key === WRITE) {
    Atomics.add(copied, 0, BigInt(packet.bytes))
    const remaining = slot[slotOffset(s) + 1] - packet.bytes
    if (remaining > 0) {
      // A short write (or the short read before it): copy the rest of this block first.
      slot[slotOffset(s)] = offset + packet.bytes
      slot[slotOffset(s) + 1] = remaining
      bytes.copyWithin(s * blockSize, s * blockSize + packet.bytes, s * blockSize + packet.bytes + remaining)
      port.read(src, view(s, remaining), offset + packet.bytes, s)
    } else {
      nextBlock(s)
    }
  }
}
