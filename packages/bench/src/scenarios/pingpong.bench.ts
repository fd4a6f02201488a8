/**
 * Scenario 3, latency: two workers bounce one packet between them through two ports (ping posts
 * to the first port and waits on the second; pong waits on the first and posts to the second),
 * so every round trip is two cross-thread wake-ups. Reports round trips per second (median of
 * the runs) and the p50 / p99 of every timed round trip, in microseconds, as ping measured them.
 *
 * Peers: the same bounce through two SAB + Atomics queues (each side parks in `Atomics.wait`),
 * through one `MessageChannel` (each side on its event loop), and the C++ driver (two C++
 * threads, two ports).
 *
 * Like for like: a port's waiter polls for up to 20 µs before it parks (its default
 * `spinMicroseconds`, the C++ driver's too), which is worth most in exactly this case. So the
 * port runs both ways, spinning (its default) and parking at once (`spinMicroseconds: 0`), and
 * so does the SAB queue (parking at once, as a plain queue does, and spinning the same 20 µs):
 * each port row has a SAB row that waits the same way.
 */
import { MessageChannel } from 'node:worker_threads'
import { CompletionPort } from '@iocp/core'
import { SabQueue } from '../baselines/sab-queue.js'
import { Team, type WorkerSpec } from '../harness/team.js'
import { limitRow } from '../limit.js'
import { attempt, measured, quantile, type Group, type Impl, type Row } from '../report.js'
import { sizedRuns, type Budget, type Context, type Scenario } from '../scenario.js'

/** Round trips in the warm-up run that sizes the timed runs. */
const FIRST = 2_000

const portWorker = new URL('../workers/port-worker.js', import.meta.url)
const sabWorker = new URL('../baselines/sab-worker.js', import.meta.url)
const messagePortWorker = new URL('../baselines/message-port-worker.js', import.meta.url)

interface PingPongRuns {
  runs: number[]
  latencyMs: Float64Array
}

/**
 * Runs ping-pong on a launched team (ping reports in slot 0 and writes each trip's latency to
 * `latency`), and pools the latencies of the timed runs.
 */
async function measureTeam(team: Team, latency: Float64Array, budget: Budget): Promise<PingPongRuns> {
  const samples: Float64Array[] = []
  let warmedUp = false
  const runs = await sizedRuns(
    budget,
    FIRST,
    async (trips) => {
      const { reports } = await team.round(trips, 1)
      const ping = reports[0]!
      const expected = (trips * (trips - 1)) / 2
      if (ping.count !== trips || ping.sum !== expected) {
        throw new Error(`ping made ${ping.count} of ${trips} round trips (key sum ${ping.sum}, expected ${expected})`)
      }
      if (warmedUp) samples.push(latency.slice(0, trips))
      warmedUp = true
      return trips / ((ping.end - ping.start) / 1000)
    },
    latency.length,
  )
  const total = samples.reduce((n, s) => n + s.length, 0)
  const latencyMs = new Float64Array(total)
  let at = 0
  for (const s of samples) {
    latencyMs.set(s, at)
    at += s.length
  }
  latencyMs.sort()
  return { runs, latencyMs }
}

function maxTrips(budget: Budget): number {
  return budget.quick ? 200_000 : 2_000_000
}

/** The port's default spin before parking, which the spinning SAB row copies. */
const PORT_SPIN_US = 20

async function portRuns(budget: Budget, spinMicroseconds: number | undefined): Promise<PingPongRuns> {
  const options = spinMicroseconds === undefined ? { concurrency: 1 } : { concurrency: 1, spinMicroseconds }
  const there = new CompletionPort(options)
  const back = new CompletionPort(options)
  const latency = new SharedArrayBuffer(maxTrips(budget) * 8)
  const handles = (): unknown[] => [there.handle, back.handle]
  const specs: WorkerSpec[] = [
    { file: portWorker, name: 'port ping', data: { role: 'ping', handles: handles(), slot: 0, latency } },
    { file: portWorker, name: 'port pong', data: { role: 'pong', handles: handles() } },
  ]
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: 1 })
    return await measureTeam(team, new Float64Array(latency), budget)
  } finally {
    there.close()
    back.close()
    await team?.close()
  }
}

async function sabRuns(budget: Budget, spinMicroseconds: number): Promise<PingPongRuns> {
  const there = new SabQueue(16)
  const back = new SabQueue(16)
  const latency = new SharedArrayBuffer(maxTrips(budget) * 8)
  const queues = [there.buffers, back.buffers]
  const specs: WorkerSpec[] = [
    { file: sabWorker, name: 'SAB ping', data: { role: 'ping', queues, slot: 0, latency, spinMicroseconds } },
    { file: sabWorker, name: 'SAB pong', data: { role: 'pong', queues, spinMicroseconds } },
  ]
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: 1 })
    return await measureTeam(team, new Float64Array(latency), budget)
  } finally {
    await team?.close() // ping exits and sends pong its EXIT
  }
}

async function messagePortRuns(budget: Budget): Promise<PingPongRuns> {
  const channel = new MessageChannel()
  const latency = new SharedArrayBuffer(maxTrips(budget) * 8)
  const specs: WorkerSpec[] = [
    {
      file: messagePortWorker,
      name: 'MessagePort ping',
      data: { role: 'ping', ports: [channel.port1], slot: 0, latency },
      transfer: [channel.port1],
    },
    {
      file: messagePortWorker,
      name: 'MessagePort pong',
      data: { role: 'pong', ports: [channel.port2] },
      transfer: [channel.port2],
    },
  ]
  let team: Team | undefined
  try {
    team = await Team.launch(specs, { slots: 1 })
    return await measureTeam(team, new Float64Array(latency), budget)
  } finally {
    await team?.close() // ping closes its port; pong's closes with it
  }
}

async function row(id: string, label: string, impl: Impl, measure: () => Promise<PingPongRuns>): Promise<Row> {
  return attempt(id, label, impl, async () => {
    const { runs, latencyMs } = await measure()
    return measured(id, label, impl, runs, {
      latency: { p50Us: quantile(latencyMs, 0.5) * 1000, p99Us: quantile(latencyMs, 0.99) * 1000 },
    })
  })
}

async function run(context: Context): Promise<Group[]> {
  const { budget } = context
  context.progress('pingpong: CompletionPort (spinning, its default)')
  const spinning: Row[] = [
    await row('pingpong.port', `CompletionPort post / get (spins up to ${PORT_SPIN_US} us, its default)`, 'port', () =>
      portRuns(budget, undefined),
    ),
  ]
  context.progress('pingpong: SAB + Atomics queue, spinning')
  spinning.push(
    await row('pingpong.sab.spin', `SAB + Atomics queue push / pop, spinning ${PORT_SPIN_US} us`, 'sab', () =>
      sabRuns(budget, PORT_SPIN_US),
    ),
  )
  context.progress('pingpong: MessagePort')
  spinning.push(await row('pingpong.messageport', 'MessagePort.postMessage (event loop)', 'messageport', () => messagePortRuns(budget)))
  context.progress('pingpong: C++ driver')
  spinning.push(
    limitRow(await context.limit.run(['pingpong']), 'pingpong', 'pingpong.native', `C++ driver of the same engine (spins up to ${PORT_SPIN_US} us)`),
  )
  context.progress('pingpong: CompletionPort, parking at once')
  const parking: Row[] = [
    await row('pingpong.parking.port', 'CompletionPort post / get, spinMicroseconds: 0', 'port', () => portRuns(budget, 0)),
  ]
  context.progress('pingpong: SAB + Atomics queue, parking at once')
  parking.push(await row('pingpong.sab', 'SAB + Atomics queue push / pop', 'sab', () => sabRuns(budget, 0)))
  return [
    {
      id: 'pingpong',
      title: `Ping-pong between two workers through two ports, waiters spinning up to ${PORT_SPIN_US} us before they park`,
      unit: 'round trips/s',
      better: 'higher',
      subject: 'pingpong.port',
      limit: 'pingpong.native',
      rows: spinning,
    },
    {
      id: 'pingpong.parking',
      title: 'Ping-pong between two workers through two ports, waiters parking at once',
      unit: 'round trips/s',
      better: 'higher',
      subject: 'pingpong.parking.port',
      rows: parking,
    },
  ]
}

export const pingpong: Scenario = {
  name: 'pingpong',
  title: '3. Ping-pong latency',
  summary:
    'two workers bounce a packet through two ports: round trips per second and p50 / p99 round-trip latency, beside two SAB + Atomics queues, a MessageChannel and the C++ driver; like for like, once with waiters spinning 20 us before they park (the port\'s default) and once parking at once.',
  run,
}
