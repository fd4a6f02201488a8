// A simulated fax device provider, in its own worker thread: it drives its jobs through their
// status changes and, at each change, posts a FAX_DEV_STATUS record to the fax service's
// completion port, with the job's completion key, as a provider's FaxDevStartJob /
// PostQueuedCompletionStatus would. Its jobs run side by side, so their changes interleave.
//
// workerData: { handle (the service's port), provider, jobs: [{ key, number, pages, outcome }] }
// It tells the main thread how many records it posted ({ type: 'done', posted }) and exits.
import { parentPort, workerData } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'
import { FS, encodeStatus } from './fax-status.mjs'

const { handle, provider, jobs } = workerData
const port = CompletionPort.fromHandle(handle)
const CALLER = `+1 555 0${100 + provider}`

/** The status changes of one job, in order. */
function* statusesOf(job) {
  const base = { stringId: 0, pageCount: 0, errorCode: 0, csi: '', callerId: CALLER, routingInfo: `inbox/${job.number}` }
  yield { ...base, statusId: FS.INITIALIZING }
  yield { ...base, statusId: FS.DIALING }
  if (job.outcome === 'busy') {
    yield { ...base, statusId: FS.BUSY, errorCode: 0x4c7 }
    return
  }
  const csi = `FAX ${job.number}`
  yield { ...base, statusId: FS.ANSWERED, csi }
  for (let page = 1; page <= job.pages; page++) yield { ...base, statusId: FS.TRANSMITTING, pageCount: page, csi }
  if (job.outcome === 'disconnected') {
    yield { ...base, statusId: FS.DISCONNECTED, pageCount: job.pages, csi, errorCode: 0x3e3 }
    return
  }
  yield { ...base, statusId: FS.COMPLETED, pageCount: job.pages, csi }
}

// Round-robin over the jobs that still have changes: one change of each in turn.
const running = jobs.map((job) => ({ job, changes: statusesOf(job), seq: 0 }))
let posted = 0
while (running.length > 0) {
  for (let i = 0; i < running.length; ) {
    const entry = running[i]
    const next = entry.changes.next()
    if (next.done) {
      running.splice(i, 1)
      continue
    }
    const record = encodeStatus(next.value)
    // key: the job's completion key; bytes: the record's size; overlapped: the job's sequence
    // number of this change; data: the record (copied once, owned by the service from here).
    port.post(entry.job.key, record.byteLength, ++entry.seq, record)
    posted++
    i++
  }
}
parentPort.postMessage({ type: 'done', provider, posted })
