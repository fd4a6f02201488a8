/**
 * The io scenario: overlapped file reads through the port (docs/io.md) beside what Node offers
 * and what one thread of the machine does, on a file the bench creates (256 MiB; 16 MiB and one
 * short run per row with `--quick`, which only checks that every row runs) in the system's
 * temporary directory.
 *
 * Workloads (io-workload.ts): random 4 KiB reads at 1 and 64 in flight, sequential 1 MiB reads at
 * 4 in flight. Rows, each a figure of reads per second (for 1 MiB reads that is MiB/s):
 * - the port with io_uring and with the thread pool, one thread keeping `depth` reads in flight
 *   (completions taken with `getManyInto`, the drained batch reissued with one `submit()`);
 * - the port with io_uring, 2 workers each issuing and draining on one port;
 * - `fs.promises` `FileHandle.read`, `depth` reads in flight;
 * - `fs.readSync` in 1 and in 2 workers (one read at a time each);
 * - the C++ drivers (native/io-limit.cpp; a reference point, not an upper bound): a C++ `pread` loop, and raw io_uring at the same
 *   depth on one thread.
 *
 * The machine reclaims page cache in the background, so before each row the file is read once
 * (every row runs on a warm cache) and the row's note gives the file's resident share (mincore)
 * before and after it. Compare rows within one run.
 */
import { execFile } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { open as openAsync } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Worker } from 'node:worker_threads'
import { CompletionPort, PacketBatch, allocateIoBuffer } from '@iocp/core'
import { attempt, failed, measured, unavailable, type Group, type Impl, type Row } from '../report.js'
import type { Budget, Context, Scenario } from '../scenario.js'
import { GO, READY, WORKLOADS, offsets, reissuer, type Workload } from './io-workload.js'

const ioLimit = fileURLToPath(new URL(`../../build/${process.platform === 'win32' ? 'io-limit.exe' : 'io-limit'}`, import.meta.url))
const ioWorker = new URL('../workers/io-worker.js', import.meta.url)
const run = promisify(execFile)

interface Measure {
  id: string
  label: string
  impl: Impl
  /** One timed run of `seconds`: reads per second. */
  once(seconds: number): Promise<number>
  close?(): void
}

/** Creates the bench file (kept across runs when it has the right size). */
function ensureFile(path: string, size: number): void {
  if (existsSync(path) && statSync(path).size === size) return
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(1 << 20)
  for (let at = 0; at < size; at += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((at + i) >>> 0, i)
    writeSync(fd, chunk, 0, Math.min(chunk.length, size - at), at)
  }
  closeSync(fd)
}

/** Reads the whole file once, so that the row that follows runs on a warm page cache. */
function warm(path: string): void {
  const fd = openSync(path, 'r')
  const chunk = Buffer.alloc(1 << 20)
  while (readSync(fd, chunk, 0, chunk.length, null) > 0) {}
  closeSync(fd)
}

/** The file's resident share (mincore, through io-limit), or undefined where it cannot run. */
async function residency(path: string): Promise<number | undefined> {
  try {
    const { stdout } = await run(ioLimit, ['residency', path])
    const { resident, pages } = JSON.parse(stdout) as { resident: number; pages: number }
    return pages === 0 ? 1 : resident / pages
  } catch {
    return undefined
  }
}

const share = (value: number | undefined): string => (value === undefined ? '?' : `${Math.round(value * 100)}%`)

function portRow(path: string, size: number, w: Workload, backend: 'io_uring' | 'thread-pool'): Measure {
  const port = new CompletionPort({ concurrency: 1, io: backend })
  const fd = openSync(path, 'r')
  port.associate(fd, 1)
  const bytes = allocateIoBuffer(w.block * w.depth) // page-aligned, as the C rows' buffers are
  const view = (slot: number): Uint8Array => bytes.subarray(slot * w.block, (slot + 1) * w.block)
  const batch = new PacketBatch(256)
  const next = offsets(size, w.block, w.random, 1)
  const reissue = reissuer(port, fd, w.depth, view)
  return {
    id: `io.${w.id}.port-${backend === 'io_uring' ? 'uring' : 'pool'}`,
    label: `CompletionPort read (${backend}), ${w.depth} in flight`,
    impl: 'port',
    async once(seconds) {
      const started = performance.now()
      const deadline = started + seconds * 1000
      let ops = 0
      let inFlight = w.depth
      let running = true
      for (let s = 0; s < w.depth; s++) port.read(fd, view(s), next(), s)
      while (inFlight > 0) {
        const n = port.getManyInto(batch)
        ops += n
        if (running) reissue(batch, n, next)
        else inFlight -= n
        if (running && performance.now() >= deadline) running = false
      }
      return ops / ((performance.now() - started) / 1000)
    },
    close() {
      port.close()
      closeSync(fd)
    },
  }
}

function fsPromisesRow(path: string, size: number, w: Workload): Measure {
  const next = offsets(size, w.block, w.random, 1)
  return {
    id: `io.${w.id}.fs-promises`,
    label: `fs.promises FileHandle.read, ${w.depth} in flight`,
    impl: 'fs',
    async once(seconds) {
      const handle = await openAsync(path, 'r')
      try {
        const started = performance.now()
        const deadline = started + seconds * 1000
        let ops = 0
        const lane = async (): Promise<void> => {
          const buffer = Buffer.alloc(w.block)
          while (performance.now() < deadline) {
            await handle.read(buffer, 0, w.block, next())
            ops++
          }
        }
        await Promise.all(Array.from({ length: w.depth }, lane))
        return ops / ((performance.now() - started) / 1000)
      } finally {
        await handle.close()
      }
    },
  }
}

/** `workers` workers in `mode`, started together; reads per second of all of them together. */
function workersRow(path: string, size: number, w: Workload, mode: 'readSync' | 'port', workers: number): Measure {
  let port: CompletionPort | undefined
  let fd = -1
  if (mode === 'port') {
    port = new CompletionPort({ concurrency: workers, io: 'io_uring' })
    fd = openSync(path, 'r')
    port.associate(fd, 1)
  }
  const buffer = allocateIoBuffer(mode === 'port' ? w.block * w.depth * workers : 8)
  return {
    id: mode === 'port' ? `io.${w.id}.port-uring-${workers}w` : `io.${w.id}.readSync-${workers}w`,
    label:
      mode === 'port'
        ? `CompletionPort read (io_uring), ${workers} workers x ${w.depth} in flight`
        : `fs.readSync in ${workers} worker${workers > 1 ? 's' : ''}`,
    impl: mode === 'port' ? 'port' : 'fs',
    async once(seconds) {
      const cells = new SharedArrayBuffer(16)
      const gate = new Int32Array(cells)
      const team = Array.from(
        { length: workers },
        (_, index) =>
          new Worker(ioWorker, {
            workerData: {
              mode, path, fd, handle: port?.handle, block: w.block, random: w.random, size, depth: w.depth,
              index, workers, seconds, cells, buffer: buffer.buffer, bufferOffset: buffer.byteOffset, bufferLength: buffer.length,
            },
          }),
      )
      const reports = team.map(
        (worker) =>
          new Promise<{ ops: number; seconds: number }>((resolve, reject) => {
            worker.once('message', resolve)
            worker.once('error', reject)
          }),
      )
      while (Atomics.load(gate, READY) < workers) await new Promise((resolve) => setTimeout(resolve, 1))
      Atomics.store(gate, GO, 1)
      Atomics.notify(gate, GO)
      const done = await Promise.all(reports)
      await Promise.all(team.map((worker) => worker.terminate()))
      return done.reduce((sum, r) => sum + r.ops, 0) / Math.max(...done.map((r) => r.seconds))
    },
    close() {
      port?.close()
      if (fd >= 0) closeSync(fd)
    },
  }
}

function nativeRow(path: string, w: Workload, kind: 'pread' | 'uring'): Measure {
  return {
    id: `io.${w.id}.native-${kind}`,
    label: kind === 'pread' ? 'C++ driver: pread loop, 1 at a time' : `C++ driver: raw io_uring, ${w.depth} in flight, one thread`,
    impl: 'native',
    async once(seconds) {
      const args =
        kind === 'pread'
          ? ['pread', path, String(w.block), w.random ? '1' : '0', String(seconds)]
          : ['uring', path, String(w.block), w.random ? '1' : '0', String(w.depth), String(seconds)]
      const { stdout } = await run(ioLimit, args, { timeout: 120_000 })
      const { ops, seconds: took } = JSON.parse(stdout) as { ops: number; seconds: number }
      return ops / took
    },
  }
}

/** Warm the file, probe residency, run the row `budget.runs` times after a warm-up. */
async function measureRow(path: string, make: () => Measure, budget: Budget, seconds: number, fallbackId: string): Promise<Row> {
  let m: Measure | undefined
  try {
    m = make()
  } catch (error) {
    const code = (error as { code?: unknown }).code
    // A backend this machine cannot run (io_uring refused) is unavailable, not failed.
    if (code === 'ERR_IOCP_IO_UNAVAILABLE') return unavailable(fallbackId, 'CompletionPort read (io_uring)', 'port', (error as Error).message)
    throw error
  }
  const measure = m
  return attempt(measure.id, measure.label, measure.impl, async () => {
    try {
      warm(path)
      const before = await residency(path)
      if (!budget.quick) await measure.once(Math.min(seconds, 0.1)) // warm-up, discarded
      const runs: number[] = []
      // --quick only checks that every row runs: one short run each.
      for (let r = 0; r < (budget.quick ? 1 : budget.runs); r++) runs.push(await measure.once(seconds))
      const after = await residency(path)
      return measured(measure.id, measure.label, measure.impl, runs, { note: `file resident ${share(before)} -> ${share(after)}` })
    } finally {
      measure.close?.()
    }
  })
}

export const io: Scenario = {
  name: 'io',
  title: 'Overlapped file reads: the port (io_uring, thread pool) beside fs and C++ drivers',
  summary:
    'Reads per second on a file the bench creates, warm in the page cache (read once before each row; mincore residency before -> after in the note): random 4 KiB reads at 1 and 64 in flight, sequential 1 MiB reads at 4 in flight.',
  async run(context: Context): Promise<Group[]> {
    const { budget } = context
    const size = budget.quick ? 16 << 20 : 256 << 20
    const path = join(tmpdir(), `iocp-bench-io-${size >> 20}m.bin`)
    ensureFile(path, size)
    const seconds = budget.quick ? 0.1 : budget.roundSeconds * 2
    const groups: Group[] = []
    try {
      for (const w of WORKLOADS) {
        const rows: Row[] = []
        const makers: Array<() => Measure> = [
          () => portRow(path, size, w, 'io_uring'),
          () => portRow(path, size, w, 'thread-pool'),
          () => workersRow(path, size, w, 'port', 2),
          () => fsPromisesRow(path, size, w),
          () => workersRow(path, size, w, 'readSync', 1),
          () => workersRow(path, size, w, 'readSync', 2),
          () => nativeRow(path, w, 'pread'),
          () => nativeRow(path, w, 'uring'),
        ]
        for (const make of makers) {
          context.progress(`io: ${w.title}: row ${rows.length + 1}/${makers.length}`)
          try {
            rows.push(await measureRow(path, make, budget, seconds, `io.${w.id}.row${rows.length + 1}`))
          } catch (error) {
            rows.push(failed(`io.${w.id}.row${rows.length + 1}`, 'row setup', 'port', error))
          }
        }
        groups.push({
          id: `io.${w.id}`,
          title: w.title,
          unit: w.block === 1 << 20 ? 'MiB/s' : 'reads/s',
          better: 'higher',
          subject: `io.${w.id}.port-uring`,
          limit: `io.${w.id}.native-uring`,
          rows,
        })
      }
    } finally {
      if (!budget.quick) unlinkSync(path)
    }
    return groups
  },
}
