// The fax service: the seed scenario of node-iocp, after the Windows fax service and its
// providers. Run it with `pnpm fax` (options: --providers N --jobs N --concurrency N
// --threads N --live).
//
//   provider threads ──FAX_DEV_STATUS packets (key = job's completion key)──▶ the pool's port
//   the PortPool's workers (onPacket in handlers.mjs) ──one log line per status──▶ the log port
//   this thread drains the log port, then prints each job's status log, in order
//
// Simulated fax device providers run in their own worker threads, as drivers would, and post a
// status packet whenever one of their jobs changes status. The service's PortPool handles the
// packets on its workers, at most `concurrency` at once; the status changes of one job are
// handled in the order they happened.
import { Worker } from 'node:worker_threads'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { CompletionPort, PortPool } from '@iocp/core'
import { isFinal, statusName } from './fax-status.mjs'

const KEY_BASE = 0x100
const OUTCOMES = ['completed', 'busy', 'completed', 'disconnected']

function jobName(key) {
  return `job 0x${key.toString(16).padStart(4, '0')}`
}

/**
 * Runs the service until every status change of every job is handled.
 * @param {{ providers?: number, jobs?: number, concurrency?: number, threads?: number, live?: boolean, print?: (line: string) => void }} [options]
 *   `jobs` is per provider.
 * @returns {Promise<{ jobs: Map<number, Array<{ seq: number, statusId: number, line: string }>>, posted: number, summary: Record<string, number>, failures: unknown[] }>}
 */
export async function runFaxService(options = {}) {
  const { providers = 3, jobs: jobsPerProvider = 4, concurrency = 2, threads = 4, live = false } = options
  const print = options.print ?? ((line) => console.log(line))
  const totalJobs = providers * jobsPerProvider
  const handled = new Int32Array(new SharedArrayBuffer(4 * totalJobs))
  const logPort = new CompletionPort({ concurrency: 1 })
  const pool = new PortPool({
    filename: new URL('./handlers.mjs', import.meta.url),
    concurrency,
    threads,
    workerData: { log: logPort.handle, handled, keyBase: KEY_BASE },
  })
  const failures = []
  const log = new Map()
  let received = 0
  pool.on('packetError', (error, packet) => {
    failures.push({ error, packet })
    received++
  })

  print(`fax service: ${providers} providers, ${totalJobs} jobs, a PortPool of concurrency ${concurrency} on ${threads} threads`)

  // Start the providers; each gets its share of the jobs, with their completion keys.
  const finished = []
  for (let provider = 0; provider < providers; provider++) {
    const jobs = []
    for (let j = 0; j < jobsPerProvider; j++) {
      const index = provider * jobsPerProvider + j
      jobs.push({ key: KEY_BASE + index, number: `555-${1000 + index}`, pages: 1 + (index % 3), outcome: OUTCOMES[index % OUTCOMES.length] })
      log.set(KEY_BASE + index, [])
    }
    const worker = new Worker(new URL('./provider.mjs', import.meta.url), {
      workerData: { handle: pool.handle, provider, jobs },
    })
    finished.push(
      new Promise((resolve, reject) => {
        worker.once('message', (message) => resolve(message.posted))
        worker.once('error', reject)
      }),
    )
  }

  // Drain the log port until every status change the providers posted has been handled.
  let expected = Infinity
  const drained = new AbortController()
  const allPosted = Promise.all(finished).then((counts) => {
    expected = counts.reduce((a, b) => a + b, 0)
    if (received >= expected) drained.abort()
  })
  allPosted.catch(() => drained.abort())
  while (received < expected) {
    let packet
    try {
      packet = await logPort.getAsync({ signal: drained.signal })
    } catch (error) {
      if (drained.signal.aborted) break
      throw error
    }
    const line = Buffer.from(packet.data).toString()
    log.get(Number(packet.key)).push({ seq: Number(packet.overlapped), statusId: packet.bytes, line })
    if (live) print(`${jobName(Number(packet.key))} ${line}`)
    received++
    if (received >= expected) break
  }
  await allPosted

  // Each job's status log, in the order its changes happened.
  for (const [key, entries] of log) {
    print('')
    print(`${jobName(key)}: ${entries.length} status changes`)
    for (const entry of entries) print(`  ${entry.line}`)
  }
  const finals = [...log.values()].map((entries) => entries.at(-1)?.statusId).filter((id) => id !== undefined && isFinal(id))
  const summary = await pool.run(finals)
  print('')
  print(`${received} status changes handled, ${failures.length} failed; outcomes: ${JSON.stringify(summary)}`)
  for (const { error, packet } of failures) print(`  failed: job ${String(packet.key)}: ${error}`)

  await pool.close()
  logPort.close()
  print('service closed')
  return { jobs: log, posted: expected, summary, failures }
}

export { statusName }

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      providers: { type: 'string' },
      jobs: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      live: { type: 'boolean' },
    },
  })
  const number = (value) => (value === undefined ? undefined : Number.parseInt(value, 10))
  const { failures } = await runFaxService({
    providers: number(values.providers),
    jobs: number(values.jobs),
    concurrency: number(values.concurrency),
    threads: number(values.threads),
    live: values.live ?? false,
  })
  process.exitCode = failures.length === 0 ? 0 : 1
}
