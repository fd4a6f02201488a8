/**
 * Scenario 5, memory: bytes of resident memory per queued packet, with 10^6 packets queued and
 * nobody dequeuing. Each JS figure comes from a fresh child process (`memory-probe.ts`) that
 * measures its RSS growth between two full GCs; the C++ driver measures the same in C++. A
 * port's queue is a ring that doubles, so the figure includes the ring's unused tail (2^20 slots
 * for 10^6 packets); the SAB queue is sized up front to the next power of two, the same way.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { limitRow } from '../limit.js'
import { attempt, measured, type Group, type Impl, type Row } from '../report.js'
import type { Context, Scenario } from '../scenario.js'

const PACKETS = 1_000_000
const probe = fileURLToPath(new URL('./memory-probe.js', import.meta.url))

async function probeOnce(impl: string): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', probe, impl, String(PACKETS)], {
    timeout: 120_000,
  })
  const { bytesPerPacket } = JSON.parse(stdout) as { bytesPerPacket: number }
  return bytesPerPacket
}

async function row(id: string, label: string, impl: Impl, probeName: string, runs: number): Promise<Row> {
  return attempt(id, label, impl, async () => {
    const values: number[] = []
    for (let r = 0; r < runs; r++) values.push(await probeOnce(probeName))
    return measured(id, label, impl, values)
  })
}

async function run(context: Context): Promise<Group[]> {
  const runs = context.budget.memoryRuns
  context.progress('memory: CompletionPort')
  const rows: Row[] = [await row('memory.port', 'CompletionPort, 10^6 packets queued', 'port', 'port', runs)]
  context.progress('memory: SAB + Atomics queue')
  rows.push(await row('memory.sab', 'SAB + Atomics queue, capacity 2^20', 'sab', 'sab', runs))
  context.progress('memory: MessagePort')
  rows.push(await row('memory.messageport', 'MessagePort, 10^6 messages unread', 'messageport', 'messageport', runs))
  context.progress('memory: C++ driver')
  rows.push(limitRow(await context.limit.run(['memory']), 'memory', 'memory.native', 'native engine (C++), 10^6 queued'))
  return [
    {
      id: 'memory',
      title: 'Resident memory per queued packet (10^6 queued)',
      unit: 'bytes/packet',
      better: 'lower',
      subject: 'memory.port',
      limit: 'memory.native',
      rows,
    },
  ]
}

export const memory: Scenario = {
  name: 'memory',
  title: '5. Memory',
  summary:
    'resident bytes per queued packet with 10^6 packets queued (RSS growth between full GCs, each in a fresh process), beside the SAB + Atomics queue, unread MessagePort messages and the native engine.',
  run,
}
