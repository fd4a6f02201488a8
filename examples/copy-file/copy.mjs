// Copies a file through a completion port, after the classic IOCP file-copy pattern: the
// source and the destination are associated with one port, `depth` reads are in flight at
// once, a small pool of workers blocks in get() on the port, and each read completion issues
// the matching write, each write completion the next read (copier.mjs).
//
//   pnpm copy-file <src> <dst> [--workers N] [--block-size BYTES] [--depth N]
//
// A progress bar is drawn on stderr when it is a terminal.
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { CompletionPort, allocateIoBuffer } from '@iocp/core'
import { ERROR, READ, SHARED_BYTES, WRITE, errorCode, sharedViews } from './protocol.mjs'

/**
 * Copies `src` to `dst` (created or truncated).
 * @param {string} src
 * @param {string} dst
 * @param {{ workers?: number, blockSize?: number, depth?: number, onProgress?: (copied: number, size: number) => void }} [options]
 * @returns {Promise<{ bytes: number, backend: string | null }>}
 */
export async function copyFile(src, dst, options = {}) {
  const { workers = 2, blockSize = 1 << 20, depth = 8, onProgress } = options
  for (const [name, value] of Object.entries({ workers, blockSize, depth })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`options.${name} must be a positive integer, got ${value}`)
  }
  const srcFd = openSync(src, 'r')
  let dstFd
  const port = new CompletionPort({ concurrency: workers })
  try {
    dstFd = openSync(dst, 'w')
    const size = fstatSync(srcFd).size
    ftruncateSync(dstFd, size) // writes land in place; a short source leaves no stale tail
    port.associate(srcFd, READ)
    port.associate(dstFd, WRITE)
    const shared = new SharedArrayBuffer(SHARED_BYTES)
    const { cells, copied } = sharedViews(shared)
    const slots = new SharedArrayBuffer(depth * 2 * 8)
    // Page-aligned: the kernel copies to and from it several times faster.
    const io = allocateIoBuffer(depth * blockSize)
    const workerData = {
      handle: undefined, src: srcFd, dst: dstFd, size, blockSize, depth, workers, shared, slots,
      buffer: io.buffer, bufferOffset: io.byteOffset,
    }
    const threads = Array.from({ length: workers }, () =>
      new Worker(new URL('./copier.mjs', import.meta.url), { workerData: { ...workerData, handle: port.handle } }),
    )
    const exits = threads.map(
      (worker) => new Promise((resolve, reject) => worker.once('error', reject).once('exit', resolve)),
    )
    // Prime the pipeline from this thread: one post per slot, as if its previous write just
    // completed with nothing left, so the workers claim the first blocks themselves.
    for (let s = 0; s < depth; s++) port.post(WRITE, 0, s)
    let timer
    if (onProgress !== undefined) timer = setInterval(() => onProgress(Number(copied[0]), size), 100)
    try {
      await Promise.all(exits)
    } finally {
      if (timer !== undefined) clearInterval(timer)
    }
    const failure = Atomics.load(cells, ERROR)
    if (failure !== 0) {
      throw Object.assign(new Error(`copy failed: ${errorCode(failure)}`), { code: errorCode(failure) })
    }
    onProgress?.(Number(copied[0]), size)
    const backend = port.stats().io.backend
    return { bytes: Number(copied[0]), backend }
  } finally {
    port.close()
    closeSync(srcFd)
    if (dstFd !== undefined) closeSync(dstFd)
  }
}

function progressBar(copied, size) {
  const width = 30
  const share = size === 0 ? 1 : copied / size
  const filled = Math.round(share * width)
  const mib = (n) => (n / (1 << 20)).toFixed(1)
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${mib(copied)}/${mib(size)} MiB`)
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      workers: { type: 'string', default: '2' },
      'block-size': { type: 'string', default: String(1 << 20) },
      depth: { type: 'string', default: '8' },
    },
  })
  if (positionals.length !== 2) {
    process.stderr.write('usage: pnpm copy-file <src> <dst> [--workers N] [--block-size BYTES] [--depth N]\n')
    process.exitCode = 2
    return
  }
  const [src, dst] = positionals
  const tty = process.stderr.isTTY === true
  const started = process.hrtime.bigint()
  const { bytes, backend } = await copyFile(src, dst, {
    workers: Number(values.workers),
    blockSize: Number(values['block-size']),
    depth: Number(values.depth),
    onProgress: tty ? progressBar : undefined,
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (tty) process.stderr.write('\n')
  process.stdout.write(`copied ${bytes} bytes in ${seconds.toFixed(3)} s (${backend})\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`copy-file: ${error.message}\n`)
    process.exitCode = 1
  })
}
