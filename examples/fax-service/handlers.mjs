// The fax service's handlers: the task module of its PortPool. Each status packet a provider
// posts lands in `onPacket` on some worker of the pool (the completion key says which job it
// is about, as with IOCP), which decodes the FAX_DEV_STATUS record, turns it into a log line and
// hands that to the service's log port.
//
// Status changes of one job are handled in order: packets leave the port in FIFO order, and a
// provider posts a job's changes in order, but two workers may hold two changes of the same job
// at once. So each job has a sequence cell (workerData.handled): a worker waits, inside
// ctx.blocking() so that it does not hold a place under the pool's concurrency limit, until the
// job's previous change is handled. It cannot wait for long: that change left the port before
// this one, so a running worker holds it.
//
// workerData: { log (handle of the log port), handled (Int32Array, one cell per job), keyBase }
import { threadId, workerData } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'
import { decodeStatus, statusName } from './fax-status.mjs'

const { handled, keyBase } = workerData
let log

function hex(key) {
  return `0x${Number(key).toString(16).padStart(4, '0')}`
}

/** Handles one status packet: key = the job's completion key, overlapped = its sequence number. */
export function onPacket(packet, ctx) {
  const job = Number(packet.key) - keyBase
  const seq = Number(packet.overlapped)
  const status = decodeStatus(packet.data)
  if (status.statusId === undefined || packet.bytes !== packet.data.byteLength) {
    throw new RangeError(`job ${hex(packet.key)}: a malformed status record`)
  }
  // Wait for this job's previous change (seq - 1) to be handled.
  ctx.blocking(() => {
    for (;;) {
      const done = Atomics.load(handled, job)
      if (done === seq - 1) return
      Atomics.wait(handled, job, done)
    }
  })
  const line =
    `#${String(seq).padEnd(2)} ${statusName(status.statusId).padEnd(17)}` +
    ` pages ${String(status.pageCount).padStart(2)}  csi ${JSON.stringify(status.csi).padEnd(14)}` +
    ` caller ${JSON.stringify(status.callerId)}  route ${JSON.stringify(status.routingInfo)}` +
    ` error ${status.errorCode}  (thread ${threadId})`
  log ??= CompletionPort.fromHandle(workerData.log)
  log.post(packet.key, status.statusId, seq, Buffer.from(line))
  Atomics.store(handled, job, seq)
  Atomics.notify(handled, job)
}

/** A task the service runs at the end: the jobs' outcome counts, from their final statuses. */
export default function summarize(finals) {
  const counts = {}
  for (const statusId of finals) counts[statusName(statusId)] = (counts[statusName(statusId)] ?? 0) + 1
  return counts
}
