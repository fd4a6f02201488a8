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

/** A ratio of `subject` to every other measured row of the group that is not the C++ driver. */
const beatsEveryPeer =
  (groupId: string, subject: string, min: number) =>
  (find: (g: string, r: string) => MeasuredRow | undefined, peers: readonly string[]) => {
    const a = find(groupId, subject)
    if (a === undefined) return undefined
    let worst: { value: number; peer: MeasuredRow } | undefined
    for (const id of peers) {
      const b = find(groupId, id)
      if (b === undefined) continue
      const value = a.median / b.median
      if (worst === undefined || value < worst.value) worst = { value, peer: b }
    }
    if (worst === undefined) return undefined
    return { value: worst.value, text: `${times(worst.value)} (${si(a.median)} vs ${si(worst.peer.median)}, the strongest peer)`, min }
  }

const shareOfDriver = (groupId: string, min: number) => (find: (g: string, r: string) => MeasuredRow | undefined) => {
  const a = find(groupId, `${groupId}.port`)
  const b = find(groupId, `${groupId}.native`)
  if (a === undefined || b === undefined) return undefined
  const value = a.median / b.median
  return { value, text: `${percent(value)} (${si(a.median)} vs ${si(b.median)})`, min }
}

const TARGETS: Target[] = [
  { target: 'one thread, post + get >= 1.0x the SAB queue', check: ratio('single.get', 'single.get.port', 'single.get.sab', 1) },
  ...(['fanout.get.1', 'fanout.get.2', 'workers.get'] as const).map((g) => ({
    target: `${g === 'workers.get' ? '2 workers -> 2 workers' : `main -> ${g.slice(-1)} worker(s)`}, unbatched >= 1.0x the SAB queue`,
    check: ratio(g, `${g}.port`, `${g}.sab`, 1),
  })),
  ...(['fanout.batch.1', 'fanout.batch.2', 'workers.batch'] as const).flatMap((g) => [
    {
      target: `${g}: batched >= 1.0x every peer`,
      check: (find: (g: string, r: string) => MeasuredRow | undefined) =>
        beatsEveryPeer(g, `${g}.port`, 1)(find, [`${g}.sab`, `${g}.messageport`]),
    },
    { target: `${g}: batched >= 60% of the C++ driver`, check: shareOfDriver(g, 0.6) },
  ]),
  {
    target: 'postMany + getManyInto on one thread >= 100 M packets/s',
    check: (find) => {
      const r = find('single.postMany', 'single.postMany.port')
      return r === undefined ? undefined : { value: r.median, text: `${si(r.median)} packets/s`, min: 100e6 }
    },
  },
  { target: 'ping-pong >= 10x MessagePort ping-pong', check: ratio('pingpong', 'pingpong.port', 'pingpong.messageport', 10) },
  { target: 'PortPool.run, 64 in flight >= 25x Piscina', check: ratio('pool.64', 'pool.64.portpool', 'pool.64.piscina', 25) },
  { target: 'PortPool.run, 1000 in flight >= 25x Piscina', check: ratio('pool.1000', 'pool.1000.portpool', 'pool.1000.piscina', 25) },
  { target: 'PortPool.run on the busy machine >= 10x Piscina', check: ratio('pool.busy', 'pool.busy.portpool', 'pool.busy.piscina', 10) },
  {
    target: 'PortPool time to the first result <= Piscina',
    check: (find) => {
      const a = find('pool.first', 'pool.first.portpool')
      const b = find('pool.first', 'pool.first.piscina')
      if (a === undefined || b === undefined) return undefined
      const value = b.median / a.median // >= 1 when PortPool is no slower
      return { value, text: `${a.median.toFixed(1)} ms vs ${b.median.toFixed(1)} ms`, min: 1 }
    },
  },
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
