// @iocp/core's bundle is compiled once per thread through dist/loader.cjs. The main thread
// leaves a V8 code cache of it with the addon when its first pool starts; every thread that
// loads the bundle after that, a pool's workers and any other worker, compiles it with that
// cache (src/loader.cts). The first pool worker that has run a task and gone idle then leaves
// its own cache, which replaces the main thread's once. A thread records how it compiled the
// bundle under a symbol.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { destroyPools, makePool, until } from '../fixtures/harness.js'

const require = createRequire(import.meta.url)
const LOADER = join(require.resolve('@iocp/core'), '..', 'loader.cjs')
const COMPILED_WITH = Symbol.for('@iocp/core.compiledWith')
const native = require('@iocp/native') as {
  codeCache(): Buffer | undefined
  codeCacheFromWorker(): boolean
  setCodeCache(bytes: unknown, fromWorker?: unknown): boolean
}

const root = mkdtempSync(join(tmpdir(), 'iocp-code-cache-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
afterEach(destroyPools)

/** How a new worker thread compiles the bundle when it imports '@iocp/core'. */
async function compiledInNewWorker(): Promise<unknown> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads')
     require(${JSON.stringify(require.resolve('@iocp/core'))})
     parentPort.postMessage(require(${JSON.stringify(LOADER)})[Symbol.for('@iocp/core.compiledWith')])`,
    { eval: true },
  )
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
  } finally {
    await worker.terminate()
  }
}

describe('the code cache of the bundle', () => {
  it('the main thread compiles the bundle itself, and leaves its cache once its first pool starts', async () => {
    expect(require(LOADER)[COMPILED_WITH]).toBe('no cache (main thread)')
    const pool = makePool({ threads: 1, concurrency: 1 })
    expect(await pool.run(21)).toBe(42)
    const cache = native.codeCache()
    expect(cache).toBeInstanceOf(Buffer)
    expect(cache!.length).toBeGreaterThan(0)
  })

  it("a pool's workers, and any other worker that loads @iocp/core, compile it with that cache", async () => {
    const task = join(root, 'compiled-with.cjs')
    writeFileSync(task, `module.exports = () => require(${JSON.stringify(LOADER)})[Symbol.for('@iocp/core.compiledWith')]\n`)
    const pool = makePool({ filename: task, threads: 2, concurrency: 2 })
    const answers = await Promise.all(Array.from({ length: 8 }, () => pool.run(null)))
    expect(new Set(answers)).toEqual(new Set(['code cache']))
    expect(await compiledInNewWorker()).toBe('code cache')
  })

  it('the first pool worker that ran a task leaves its own cache, once, and later workers compile with it', async () => {
    const task = join(root, 'compiled-with-later.cjs')
    writeFileSync(task, `module.exports = () => require(${JSON.stringify(LOADER)})[Symbol.for('@iocp/core.compiledWith')]\n`)
    const first = makePool({ filename: task, threads: 1, concurrency: 1 })
    await first.run(null)
    // It leaves it when it goes idle, after its task.
    await until(() => native.codeCacheFromWorker())
    const left = native.codeCache()!
    // Only the first worker's is kept: the main thread's and later workers' are ignored.
    expect(native.setCodeCache(new Uint8Array([1, 2, 3]), false)).toBe(false)
    expect(native.setCodeCache(new Uint8Array([1, 2, 3]), true)).toBe(false)
    const later = makePool({ filename: task, threads: 2, concurrency: 2 })
    const answers = await Promise.all(Array.from({ length: 8 }, () => later.run(null)))
    expect(new Set(answers)).toEqual(new Set(['code cache']))
    expect(native.codeCache()!.equals(left)).toBe(true)
  })

  it('setCodeCache names a bad argument', () => {
    expect(() => native.setCodeCache('bytes', true)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/bytes must be a Uint8Array/) }))
    expect(() => native.setCodeCache(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/fromWorker must be a boolean/) }))
  })

  it('with --enable-source-maps the bundle is required as usual, and its stack frames map to src/', () => {
    const script = `const core = require(${JSON.stringify(LOADER)})
      try { new core.CompletionPort({ concurency: 1 }) } catch (error) {
        console.log(JSON.stringify({ how: core[Symbol.for('@iocp/core.compiledWith')], frame: error.stack.split('\\n')[1] }))
      }`
    const out = JSON.parse(execFileSync(process.execPath, ['--enable-source-maps', '-e', script], { encoding: 'utf8' })) as { how: string; frame: string }
    expect(out.how).toBe('require() (source maps on)')
    expect(out.frame).toMatch(/src[\\/]errors\.ts:\d+:\d+/)
  })

  it('one instance of the package per thread: require() of the package is the loader\'s bundle', () => {
    // (vitest's own import() of a workspace package is vitest's copy, hence Node's require here.)
    expect(require('@iocp/core').PortClosedError).toBe(require(LOADER).PortClosedError)
  })
})
