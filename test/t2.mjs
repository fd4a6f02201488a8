import { CompletionPort } from '@iocp/core'
import { SabQueue } from '../packages/bench/dist/baselines/sab-queue.js'
const p = new CompletionPort({ concurrency: 1 })
const q = new SabQueue(4096); const out = new Float64Array(3)
const N = 2e6
function port() { for (let i = 0; i < N; i++) { p.post(i, 1, 2); p.get() } }
function sab() { for (let i = 0; i < N; i++) { q.push(i, 1, 2); q.pop(out) } }

for (let r = 0; r < 4; r++) {
  let t = performance.now(); port(); const a = N / (performance.now() - t) / 1e3
  t = performance.now(); sab(); const b = N / (performance.now() - t) / 1e3
  console.log('port', a.toFixed(2), 'sab', b.toFixed(2), 'ratio', (a / b).toFixed(2))
}
