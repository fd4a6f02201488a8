/**
 * The project's targets, checked against the figures of the run that just happened (never
 * against remembered numbers). A target whose rows were not measured (a scenario left out with
 * `--only`, a peer that is unavailable) is reported as "not measured".
 */
import { percent, si, times } from './format.js'
import { measuredRow, type Group, type MeasuredRow, type ScenarioResult, type TargetResult } from './report.js'

interface Target {
  target: string
  /** The figure to compare and the threshold it must reach, or undefined if not measured. */
  check(find: (groupId: string, rowId: string) => MeasuredRow | undefined): { value: number; text: string; min: number } | undefined
}

const ratio =
  (groupId: string, subject: string, peer: string, min: number) =>
  (find: (g: string, r: string) => MeasuredRow | undefined) => {
    const a = find(groupId, subject)
    const b = find(groupId, peer)
    if (a === undefined || b === undefined) return undefined
    const value = a.median / b.median
    return { value, text: `${times(value)} (${si(a.median)} vs ${si(b.median)})`, min }
  }

const TARGETS: Target[] = [
  {
    target: 'PortPool.run >= 25x Piscina run() (best window of each)',
    check: (find) => {
      const best = (impl: string): MeasuredRow | undefined =>
        [64, 1000]
          .map((w) => find(`pool.${w}`, `pool.${w}.${impl}`))
          .filter((r): r is MeasuredRow => r !== undefined)
          .sort((a, b) => b.median - a.median)[0]
      const port = best('portpool')
      const pisc = best('piscina')
      if (port === undefined || pisc === undefined) return undefined
      const value = port.median / pisc.median
      return { value, text: `${times(value)} (${si(port.median)} vs ${si(pisc.median)} tasks/s)`, min: 25 }
    },
  },
  { target: 'single-thread post + get >= the SAB ring', check: ratio('single.get', 'single.get.port', 'single.get.sab', 1) },
  {
    target: 'zero-allocation batch (postMany + getManyInto) >= 50 M packets/s',
    check: (find) => {
      const r = find('single.postMany', 'single.postMany.port')
      return r === undefined ? undefined : { value: r.median, text: `${si(r.median)} packets/s`, min: 50e6 }
    },
  },
  { target: 'main -> 2 workers, get >= 2x the SAB ring', check: ratio('fanout.get.2', 'fanout.get.2.port', 'fanout.get.2.sab', 2) },
  {
    target: 'main -> 2 workers, batched >= 60% of the C++ driver',
    check: (find) => {
      const a = find('fanout.batch.2', 'fanout.batch.2.port')
      const b = find('fanout.batch.2', 'fanout.batch.2.native')
      if (a === undefined || b === undefined) return undefined
      const value = a.median / b.median
      return { value, text: `${percent(value)} (${si(a.median)} vs ${si(b.median)})`, min: 0.6 }
    },
  },
  { target: 'ping-pong >= 10x MessagePort ping-pong', check: ratio('pingpong', 'pingpong.port', 'pingpong.messageport', 10) },
  {
    target: '@iocp/redis (2 consumer processes) >= 5x BullMQ tasks/s',
    check: ratio('redis', 'redis.pool.2', 'redis.bullmq', 5),
  },
  {
    target: '@iocp/redis end to end >= 60% of the pipelined XADD ceiling',
    check: (find) => {
      const a = find('redis', 'redis.pool.2')
      const b = find('redis', 'redis.xadd')
      if (a === undefined || b === undefined) return undefined
      const value = a.median / b.median
      return { value, text: `${percent(value)} (${si(a.median)} vs ${si(b.median)})`, min: 0.6 }
    },
  },
  // overlapped file I/O (the io scenario)
  {
    target: 'random 4 KiB reads x64, one thread: port (io_uring) >= 70% of raw io_uring in C',
    check: ratio('io.rand4k.64', 'io.rand4k.64.port-uring', 'io.rand4k.64.native-uring', 0.7),
  },
  {
    target: 'random 4 KiB reads x64, one thread: port (io_uring) >= 3x fs.promises',
    check: ratio('io.rand4k.64', 'io.rand4k.64.port-uring', 'io.rand4k.64.fs-promises', 3),
  },
  {
    target: 'random 4 KiB reads x64: 2 workers issuing and draining >= 1.5x one thread',
    check: ratio('io.rand4k.64', 'io.rand4k.64.port-uring-2w', 'io.rand4k.64.port-uring', 1.5),
  },
  {
    target: 'sequential 1 MiB reads: port (io_uring) >= 90% of raw io_uring in C',
    check: ratio('io.seq1m.4', 'io.seq1m.4.port-uring', 'io.seq1m.4.native-uring', 0.9),
  },
]

export function checkTargets(scenarios: ScenarioResult[]): TargetResult[] {
  const groups = new Map<string, Group>()
  for (const s of scenarios) for (const g of s.groups) groups.set(g.id, g)
  const find = (groupId: string, rowId: string): MeasuredRow | undefined => {
    const group = groups.get(groupId)
    return group === undefined ? undefined : measuredRow(group, rowId)
  }
  return TARGETS.map(({ target, check }) => {
    const result = check(find)
    if (result === undefined) return { target, measured: '-', status: 'not measured' }
    return { target, measured: result.text, status: result.value >= result.min ? 'met' : 'missed' }
  })
}
