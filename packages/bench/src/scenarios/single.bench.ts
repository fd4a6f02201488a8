/**
 * Scenario 1, one thread: what a post and a dequeue cost with no other thread involved, so the
 * figure is the binding and the engine's own overhead. Measured with tinybench (`throws: true`:
 * a packet that comes back wrong fails the run). Each task iteration moves 1024 packets, far
 * above the timer's resolution; a run's figure is 1024 / the median iteration time, and the row
 * reports the median of several runs, with the tasks interleaved run by run (each port form next
 * to its peers, in alternating order: see RUN_ORDER).
 *
 * Forms: post + get; post x256 + getMany (an array of packet objects); post x256 + getManyInto
 * (a reused PacketBatch); postMany + getManyInto (zero allocation both ways).
 *
 * Peers, beside each form: the pure-JS SAB queue (push + pop; push x256 + one batched pop;
 * pushMany + popMany), `MessagePort.postMessage` + `receiveMessageOnPort` on one thread, and the
 * C++ driver (post + get; post x256 + one get of 256; postMany + one get).
 */
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'
import { Bench } from 'tinybench'
import { CompletionPort, PacketBatch } from '@iocp/core'
import { SabQueue } from '../baselines/sab-queue.js'
import { limitRow } from '../limit.js'
import { attempt, measured, type Group, type Impl, type Row } from '../report.js'
import type { Context, Scenario } from '../scenario.js'

/** Packets per task iteration. */
const PER_ITERATION = 1024
/** Packets per batch in the batched forms. */
const BATCH = 256

interface Task {
  id: string
  label: string
  impl: Impl
  setup(): () => void
  teardown?(): void
}

function portTasks(): { tasks: Task[]; close(): void } {
  const port = new CompletionPort({ concurrency: 1 })
  const batch = new PacketBatch(BATCH)
  const outgoing = new PacketBatch(BATCH)
  const tasks: Task[] = [
    {
      id: 'single.get.port',
      label: 'CompletionPort post + get',
      impl: 'port',
      setup: () => () => {
        for (let i = 0; i < PER_ITERATION; i++) {
          port.post(i)
          const packet = port.get()
          if (packet === null || packet.key !== i) throw new Error(`post ${i}, get returned ${packet?.key}`)
        }
      },
    },
    {
      id: 'single.getMany.port',
      label: `CompletionPort post x${BATCH} + getMany(${BATCH})`,
      impl: 'port',
      setup: () => () => {
        for (let base = 0; base < PER_ITERATION; base += BATCH) {
          for (let i = 0; i < BATCH; i++) port.post(base + i)
          const packets = port.getMany(BATCH)
          if (packets.length !== BATCH || packets[BATCH - 1]!.key !== base + BATCH - 1) {
            throw new Error(`posted ${BATCH}, getMany returned ${packets.length}`)
          }
        }
      },
    },
    {
      id: 'single.getManyInto.port',
      label: `CompletionPort post x${BATCH} + getManyInto(PacketBatch)`,
      impl: 'port',
      setup: () => () => {
        for (let base = 0; base < PER_ITERATION; base += BATCH) {
          for (let i = 0; i < BATCH; i++) port.post(base + i)
          const n = port.getManyInto(batch)
          if (n !== BATCH || batch.key(BATCH - 1) !== base + BATCH - 1) {
            throw new Error(`posted ${BATCH}, getManyInto returned ${n}`)
          }
        }
      },
    },
    {
      id: 'single.postMany.port',
      label: `CompletionPort postMany(${BATCH}) + getManyInto(PacketBatch)`,
      impl: 'port',
      setup: () => () => {
        for (let base = 0; base < PER_ITERATION; base += BATCH) {
          outgoing.clear()
          for (let i = 0; i < BATCH; i++) outgoing.push(base + i)
          port.postMany(outgoing)
          const n = port.getManyInto(batch)
          if (n !== BATCH || batch.key(BATCH - 1) !== base + BATCH - 1) {
            throw new Error(`postMany ${BATCH}, getManyInto returned ${n}`)
          }
        }
      },
    },
  ]
  return { tasks, close: () => void port.close() }
}

function peerTasks(): Task[] {
  const queue = new SabQueue(4096)
  const out = new Float64Array(BATCH * 3)
  const from = new Float64Array(BATCH * 3)
  const channel = new MessageChannel()
  return [
    {
      id: 'single.get.sab',
      label: 'SAB + Atomics queue push + pop',
      impl: 'sab',
      setup: () => () => {
        for (let i = 0; i < PER_ITERATION; i++) {
          queue.push(i, 0, 0)
          queue.pop(out)
          if (out[0] !== i) throw new Error(`push ${i}, pop returned ${out[0]}`)
        }
      },
    },
    {
      id: 'single.batch.sab',
      label: `SAB + Atomics queue push x${BATCH} + popMany(${BATCH})`,
      impl: 'sab',
      setup: () => () => {
        for (let base = 0; base < PER_ITERATION; base += BATCH) {
          for (let i = 0; i < BATCH; i++) queue.push(base + i, 0, 0)
          const n = queue.popMany(out, BATCH)
          if (n !== BATCH || out[(BATCH - 1) * 3] !== base + BATCH - 1) throw new Error(`popMany returned ${n}`)
        }
      },
    },
    {
      id: 'single.pushMany.sab',
      label: `SAB + Atomics queue pushMany(${BATCH}) + popMany(${BATCH})`,
      impl: 'sab',
      setup: () => () => {
        for (let base = 0; base < PER_ITERATION; base += BATCH) {
          for (let i = 0; i < BATCH; i++) from[i * 3] = base + i
          queue.pushMany(from, BATCH)
          const n = queue.popMany(out, BATCH)
          if (n !== BATCH || out[(BATCH - 1) * 3] !== base + BATCH - 1) throw new Error(`popMany returned ${n}`)
        }
      },
    },
    {
      id: 'single.get.messageport',
      label: 'MessagePort postMessage + receiveMessageOnPort',
      impl: 'messageport',
      setup: () => () => {
        for (let i = 0; i < PER_ITERATION; i++) {
          channel.port1.postMessage([i, 0, 0])
          const received = receiveMessageOnPort(channel.port2)?.message as number[] | undefined
          if (received?.[0] !== i) throw new Error(`post ${i}, received ${received?.[0]}`)
        }
      },
      teardown: () => channel.port1.close(),
    },
  ]
}

/**
 * The tasks in the order they run: each port form next to the peers it is compared with. The
 * VM's speed moves in spells of a second or so (a run's samples fall into two clusters, about 2x
 * apart, for every row alike), so rows that run next to each other are compared in the same spell.
 */
const RUN_ORDER = [
  'single.get.port',
  'single.get.sab',
  'single.get.messageport',
  'single.getMany.port',
  'single.batch.sab',
  'single.getManyInto.port',
  'single.postMany.port',
  'single.pushMany.sab',
]

function byForm(tasks: Task[]): Task[] {
  const rank = (task: Task): number => {
    const at = RUN_ORDER.indexOf(task.id)
    return at === -1 ? RUN_ORDER.length : at
  }
  return [...tasks].sort((a, b) => rank(a) - rank(b))
}

async function run(context: Context): Promise<Group[]> {
  const { budget } = context
  const port = portTasks()
  const tasks = byForm([...port.tasks, ...peerTasks()])
  const values = new Map<string, number[]>(tasks.map((t) => [t.id, []]))
  const errors = new Map<string, unknown>()
  try {
    for (let r = 0; r < budget.runs; r++) {
      context.progress(`single: tinybench run ${r + 1}/${budget.runs}`)
      // Every other run in the reverse order: each form's rows stay next to each other, and
      // neither runs first every time.
      for (const task of r % 2 === 0 ? tasks : [...tasks].reverse()) {
        if (errors.has(task.id)) continue
        // One Bench per task and run, so that one task's failure is its own row's failure.
        const bench = new Bench({
          name: task.label,
          time: budget.benchTimeMs,
          warmupTime: budget.warmupTimeMs,
          throws: true,
        })
        bench.add(task.label, task.setup())
        try {
          await bench.run()
          const result = bench.tasks[0]!.result
          if (result.state !== 'completed') throw new Error(`tinybench: task ${result.state}`)
          values.get(task.id)!.push((PER_ITERATION * 1000) / result.latency.p50)
        } catch (error) {
          errors.set(task.id, error)
        }
      }
    }
  } finally {
    port.close()
    for (const task of tasks) task.teardown?.()
  }

  const row = async (id: string): Promise<Row> => {
    const task = tasks.find((t) => t.id === id)!
    return attempt(id, task.label, task.impl, () => {
      if (errors.has(id)) throw errors.get(id)
      return measured(id, task.label, task.impl, values.get(id)!)
    })
  }
  context.progress('single: C++ driver')
  const native = await context.limit.run(['single.'])
  return [
    {
      id: 'single.get',
      title: 'One thread: post + get, one packet at a time',
      unit: 'packets/s',
      better: 'higher',
      subject: 'single.get.port',
      limit: 'single.get.native',
      rows: [
        await row('single.get.port'),
        await row('single.get.sab'),
        await row('single.get.messageport'),
        limitRow(native, 'single.get', 'single.get.native'),
      ],
    },
    {
      id: 'single.getMany',
      title: `One thread: post x${BATCH} + getMany (an array of packet objects)`,
      unit: 'packets/s',
      better: 'higher',
      subject: 'single.getMany.port',
      limit: 'single.getMany.native',
      rows: [
        await row('single.getMany.port'),
        await row('single.batch.sab'),
        limitRow(native, 'single.batch', 'single.getMany.native'),
      ],
    },
    {
      id: 'single.getManyInto',
      title: `One thread: post x${BATCH} + getManyInto (zero-allocation batch)`,
      unit: 'packets/s',
      better: 'higher',
      subject: 'single.getManyInto.port',
      limit: 'single.getManyInto.native',
      rows: [
        await row('single.getManyInto.port'),
        await row('single.batch.sab'),
        limitRow(native, 'single.batch', 'single.getManyInto.native'),
      ],
    },
    {
      id: 'single.postMany',
      title: `One thread: postMany x${BATCH} + getManyInto (zero allocation both ways)`,
      unit: 'packets/s',
      better: 'higher',
      subject: 'single.postMany.port',
      limit: 'single.postMany.native',
      rows: [
        await row('single.postMany.port'),
        await row('single.pushMany.sab'),
        limitRow(native, 'single.postMany', 'single.postMany.native'),
      ],
    },
  ]
}

export const single: Scenario = {
  name: 'single',
  title: '1. One thread',
  summary:
    'post + get, post + getMany, post + getManyInto and postMany + getManyInto on one thread (tinybench, 1024 packets per iteration), beside a SharedArrayBuffer + Atomics queue, MessagePort on one thread, and the C++ driver.',
  run,
}
