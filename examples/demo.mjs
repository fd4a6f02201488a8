// The short demo: the main thread posts packets to a completion port and two worker threads
// drain it with blocking get() calls, concurrency 2. Run: pnpm demo
import { Worker } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'

const PACKETS = 100_000
const port = new CompletionPort({ concurrency: 2 })

const consumer = `
  import { workerData, parentPort, threadId } from 'node:worker_threads'
  import { CompletionPort, PortClosedError } from '@iocp/core'
  const port = CompletionPort.fromHandle(workerData.handle)
  let count = 0, sum = 0
  try {
    for (;;) {
      const packet = port.get()          // blocks this worker until a packet is released to it
      count++
      sum += packet.bytes
    }
  } catch (error) {
    if (!(error instanceof PortClosedError)) throw error
  }
  parentPort.postMessage({ threadId, count, sum })
`
const workers = [0, 1].map(
  () => new Worker(consumer, { eval: true, type: 'module', workerData: { handle: port.handle } }),
)
const results = workers.map(
  (worker) => new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject)),
)

const started = process.hrtime.bigint()
for (let i = 0; i < PACKETS; i++) port.post(i, i % 1000) // key, bytes
port.shutdown() // no more posts: the workers drain the queue, then get() throws PortClosedError
const done = await Promise.all(results)
const ms = Number(process.hrtime.bigint() - started) / 1e6

const expectedSum = Array.from({ length: PACKETS }, (_, i) => i % 1000).reduce((a, b) => a + b, 0)
for (const r of done) console.log(`worker ${r.threadId}: ${r.count} packets`)
const total = done.reduce((n, r) => n + r.count, 0)
const sum = done.reduce((n, r) => n + r.sum, 0)
console.log(`posted ${PACKETS}, taken ${total}, bytes sum ${sum === expectedSum ? 'matches' : 'DIFFERS'}`)
console.log(`main -> 2 workers: ${PACKETS} packets in ${ms.toFixed(1)} ms (this run, this machine)`)
port.close()
if (total !== PACKETS || sum !== expectedSum) process.exit(1)
