/**
 * Scenario 2, throughput across threads: the main thread posts N packets that 1 or 2 worker
 * threads drain, one packet per call (`post` / `get`) or batched (`postMany` of 256 /
 * `getManyInto` of up to 256); then worker producers feeding worker consumers (2 -> 2).
 *
 * Plain timed loops, not tinybench: a run starts when main starts posting (or wakes the
 * producers) and ends when the last consumer has taken its STOP packet. Every consumer counts
 * its packets and sums their keys; a run in which one packet is lost or duplicated fails. Runs
 * are sized from a warm-up run to last about `budget.roundSeconds` each.
 *
 * Peers, case by case: the SAB + Atomics queue with the same workers and STOP protocol
 * (consumers park in `Atomics.wait`; the batched forms push and pop a run of cells with one
 * CAS), MessagePort streaming (one channel per producer-consumer pair, round-robin; the batched
 * form sends a Float64Array of 256 packets per message), and the C++ driver (the batched
 * form posts 256 per `Port::postMany` and gets up to 256 per call).
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { CompletionPort, PacketBatch } from '@iocp/core'
import { send } from '../baselines/message-port.js'
import { SabQueue, pushKeys } from '../baselines/sab-queue.js'
import { STOP, type Report } from '../harness/control.js'
import { Team, type WorkerSpec } from '../harness/team.js'
import { limitRow } from '../limit.js'
import { postKeys } from '../workers/feed.js'
import { attempt, measured, type Group, type Row } from '../report.js'
import { sizedRuns, type Budget, type Context, type Scenario } from '../scenario.js'

const BATCH = 256
/** Packets in the warm-up run that sizes the timed runs. */
const FIRST = 20_000

const portWorker = new URL('../workers/port-worker.js', import.meta.url)
const sabWorker = new URL('../baselines/sab-worker.js', import.meta.url)
const messagePortWorker = new URL('../baselines/message-port-worker.js', import.meta.url)

interface Case {
  id: string
  title: string
  /** `'main'`, or the number of producer workers. */
  producers: 'main' | number
  consumers: number
  form: 'get' | 'batch'
}

const CASES: Case[] = [
  { id: 'fanout.get.1', title: 'main -> 1 worker, one packet per call', producers: 'main', consumers: 1, form: 'get' },
  { id: 'fanout.get.2', title: 'main -> 2 workers, one packet per call', producers: 'main', consumers: 2, form: 'get' },
  { id: 'fanout.batch.1', title: `main -> 1 worker, batched (${BATCH} per post, up to ${BATCH} per get)`, producers: 'main', consumers: 1, form: 'batch' },
  { id: 'fanout.batch.2', title: `main -> 2 workers, batched (${BATCH} per post, up to ${BATCH} per get)`, producers: 'main', consumers: 2, form: 'batch' },
  { id: 'workers.get', title: '2 worker producers -> 2 worker consumers, one packet per call', producers: 2, consumers: 2, form: 'get' },
  { id: 'workers.batch', title: `2 worker producers -> 2 worker consumers, batched (${BATCH})`, producers: 2, consumers: 2, form: 'batch' },
]

/** Packets per second of one run, after checking that every packet arrived exactly once. */
export function rateOf(n: number, start: number, reports: Report[]): number {
  let count = 0
  let sum = 0
  let end = start
  for (const r of reports) {
    count += r.count
    sum += r.sum
    end = Math.max(end, r.end)
  }
  const expected = (n * (n - 1)) / 2
  if (count !== n || sum !== expected) {
    throw new Error(`lost or duplicated packets: consumers took ${count} of ${n} (key sum ${sum}, expected ${expected})`)
  }
  return n / ((end - start) / 1000)
}

/** Packets per post on the producing side: batched cases batch both ways. */
function batchOf(c: Case): number {
  return c.form === 'batch' ? BATCH : 1
}

function producerCount(c: Case): number {
  return c.producers === 'main' ? 0 : c.producers
}

/**
 * The workers of one case: `c.consumers` consumers and, unless the main thread produces, the
 * producers, all on the same channel (the port's handles or the SAB queue's buffers).
 */
function teamSpecs(c: Case, file: URL, label: string, channel: Record<string, unknown>): WorkerSpec[] {
  const specs: WorkerSpec[] = []
  for (let k = 0; k < c.consumers; k++) {
    specs.push({
      file,
      name: `${label} consumer ${k}`,
      data: { role: c.form === 'get' ? 'consume-get' : 'consume-batch', ...channel, slot: k },
    })
  }
  for (let p = 0; p < producerCount(c); p++) {
    specs.push({
      file,
      name: `${label} producer ${p}`,
      data: {
        role: 'produce',
        ...channel,
        index: p,
        producers: producerCount(c),
        consumers: c.consumers,
        batch: batchOf(c),
      },
    })
  }
  return specs
}

async function portRuns(c: Case, budget: Budget): Promise<number[]> {
  const port = new CompletionPort({ concurrency: c.consumers })
  const specs = teamSpecs(c, portWorker, 'port', { handles: [port.handle] })
  const batch = c.form === 'batch' ? new PacketBatch(BATCH) : undefined
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: c.consumers })
    const running = team
    return await sizedRuns(budget, FIRST, async (n) => {
      const kick =
        c.producers === 'main'
          ? () => {
              postKeys(port, 0, 1, n, batch)
              for (let k = 0; k < c.consumers; k++) port.post(STOP)
            }
          : undefined
      const { start, reports } = await running.round(n, c.consumers, kick)
      return rateOf(n, start, reports)
    })
  } finally {
    port.close() // wakes any consumer still blocked in get() (after a failure)
    await team?.close()
  }
}

async function sabRuns(c: Case, budget: Budget): Promise<number[]> {
  const queue = new SabQueue(65_536)
  const specs = teamSpecs(c, sabWorker, 'SAB', { queues: [queue.buffers] })
  const buffer = c.form === 'batch' ? new Float64Array(BATCH * 3) : undefined
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: c.consumers })
    const running = team
    return await sizedRuns(budget, FIRST, async (n) => {
      const kick =
        c.producers === 'main'
          ? () => {
              pushKeys(queue, 0, 1, n, buffer)
              for (let k = 0; k < c.consumers; k++) queue.push(STOP, 0, 0)
            }
          : undefined
      const { start, reports } = await running.round(n, c.consumers, kick)
      return rateOf(n, start, reports)
    })
  } finally {
    await team?.close() // gated workers exit; one still parked in the queue is terminated
  }
}

async function messagePortRuns(c: Case, budget: Budget): Promise<number[]> {
  const batch = batchOf(c)
  const senders = c.producers === 'main' ? 1 : c.producers
  // channels[p][k]: producer p -> consumer k.
  const channels = Array.from({ length: senders }, () => Array.from({ length: c.consumers }, () => new MessageChannel()))
  const specs: WorkerSpec[] = []
  for (let k = 0; k < c.consumers; k++) {
    const ports = channels.map((row) => row[k]!.port2)
    specs.push({
      file: messagePortWorker,
      name: `MessagePort consumer ${k}`,
      data: { role: 'consume', ports, slot: k, producers: senders },
      transfer: ports,
    })
  }
  const mainPorts: MessagePort[] = c.producers === 'main' ? channels[0]!.map((ch) => ch.port1) : []
  for (let p = 0; p < producerCount(c); p++) {
    const ports = channels[p]!.map((ch) => ch.port1)
    specs.push({
      file: messagePortWorker,
      name: `MessagePort producer ${p}`,
      data: { role: 'produce', ports, index: p, producers: senders, batch },
      transfer: ports,
    })
  }
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: c.consumers })
    const running = team
    return await sizedRuns(budget, FIRST / 4, async (n) => {
      const kick = c.producers === 'main' ? () => send(mainPorts, 0, 1, n, batch) : undefined
      const { start, reports } = await running.round(n, c.consumers, kick)
      return rateOf(n, start, reports)
    })
  } finally {
    for (const port of mainPorts) port.close() // the consumers' ports close, and they exit
    await team?.close()
  }
}

const LABELS = {
  get: { port: 'CompletionPort post / get', sab: 'SAB + Atomics queue push / pop', messageport: 'MessagePort.postMessage, 1 packet per message' },
  batch: {
    port: `CompletionPort postMany / getManyInto (${BATCH})`,
    sab: `SAB + Atomics queue pushMany / popMany (${BATCH})`,
    messageport: `MessagePort.postMessage, ${BATCH} packets per message`,
  },
}

async function run(context: Context): Promise<Group[]> {
  const { budget } = context
  const groups: Group[] = []
  for (const c of CASES) {
    const labels = LABELS[c.form]
    const rows: Row[] = []
    const measure = async (impl: 'port' | 'sab' | 'messageport', runs: (c: Case, b: Budget) => Promise<number[]>) => {
      context.progress(`fanout: ${c.title}: ${labels[impl]}`)
      const id = `${c.id}.${impl}`
      rows.push(await attempt(id, labels[impl], impl, async () => measured(id, labels[impl], impl, await runs(c, budget))))
    }
    await measure('port', portRuns)
    await measure('sab', sabRuns)
    await measure('messageport', messagePortRuns)
    groups.push({
      id: c.id,
      title: c.title,
      unit: 'packets/s',
      better: 'higher',
      subject: `${c.id}.port`,
      limit: `${c.id}.native`,
      rows,
      ...(c.producers === 'main' ? { chart: { consumers: c.consumers, form: c.form } } : {}),
    })
  }
  context.progress('fanout: C++ driver')
  const native = await context.limit.run(['fanout.', 'workers.'])
  for (const group of groups) group.rows.push(limitRow(native, group.id, `${group.id}.native`))
  return groups
}

export const fanout: Scenario = {
  name: 'fanout',
  title: '2. Across threads',
  summary:
    'main -> 1 and 2 worker consumers (post / get, and batched postMany / getManyInto of 256), and 2 worker producers -> 2 worker consumers; timed loops that count every packet, beside the SAB + Atomics queue, MessagePort streaming and the C++ driver.',
  run,
}
