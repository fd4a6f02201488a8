/**
 * Child process of the memory scenario: `node --expose-gc memory-probe.js IMPL COUNT` queues
 * COUNT packets in one structure and prints `{"bytesPerPacket": ...}`: the growth of the
 * process's resident set size, after a full GC on both sides, divided by COUNT. A fresh process
 * per measurement, so no earlier allocation is reused.
 *
 * IMPL: `port` (a CompletionPort nobody dequeues from), `sab` (the SAB + Atomics queue, sized
 * for COUNT), `messageport` (a MessageChannel whose receiving end is never started).
 */
import { MessageChannel } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'
import { SabQueue } from '../baselines/sab-queue.js'

const [impl, countText] = process.argv.slice(2)
const count = Number(countText)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
if (!Number.isSafeInteger(count) || count < 1) throw new Error(`bad count ${countText}`)

function settle(): number {
  gc!()
  gc!()
  return process.memoryUsage.rss()
}

// Load every module and warm every code path before the baseline is taken.
new CompletionPort({ concurrency: 1 }).close()
new MessageChannel().port1.close()
new SabQueue(2)

let keep: unknown
const before = settle()
if (impl === 'port') {
  const port = new CompletionPort({ concurrency: 1 })
  for (let i = 0; i < count; i++) port.post(i)
  if (port.stats().queued !== count) throw new Error(`${port.stats().queued} packets queued, expected ${count}`)
  keep = port
} else if (impl === 'sab') {
  const queue = new SabQueue(count)
  for (let i = 0; i < count; i++) if (!queue.tryPush(i, 0, 0)) throw new Error(`queue full at ${i}`)
  keep = queue
} else if (impl === 'messageport') {
  const channel = new MessageChannel()
  for (let i = 0; i < count; i++) channel.port1.postMessage([i, 0, 0])
  keep = channel
} else {
  throw new Error(`unknown implementation ${impl}`)
}
const after = settle()
process.stdout.write(`${JSON.stringify({ bytesPerPacket: (after - before) / count, kept: typeof keep })}\n`)
process.exit(0)
