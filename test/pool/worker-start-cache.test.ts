// A pool's workers compile dist/worker-start.cjs with the V8 code cache the build leaves beside
// it for the V8 that built it (pool/worker/entry.cts, scripts/bundle.mjs), and without it when V8 refuses it (other flags,
// another Node): the pool works either way. In a child process started with plain flags, since
// V8 takes a cache only under the flags it was made with (vitest's own may differ).
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CORE = fileURLToPath(new URL('../../packages/core/dist/index.js', import.meta.url))
const TASK = fileURLToPath(new URL('../fixtures/compiled-with.cjs', import.meta.url))
/** The build leaves a cache for its own V8 only (CI runs these suites on other Nodes too, with the same build). */
const CACHED = existsSync(fileURLToPath(new URL(`../../packages/core/dist/worker-start-v8-${process.versions.v8}.cache`, import.meta.url)))

/** What each of a 2-thread pool's first tasks says of its worker's compile, run by `node ...flags`. */
function compiledWith(flags: string[]): unknown {
  const script = `
    const { PortPool } = await import(${JSON.stringify(CORE)})
    const pool = new PortPool({ filename: ${JSON.stringify(TASK)}, threads: 2, concurrency: 2 })
    const seen = await Promise.all([pool.run(0), pool.run(0), pool.run(0)])
    await pool.close()
    console.log(JSON.stringify(seen))`
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' })
  return JSON.parse(out)
}

describe('the code cache of worker-start.cjs', () => {
  it('is what a worker compiles it with, under the flags that made it (on the Node that built the package)', () => {
    const mode = CACHED ? 'cache' : 'no cache'
    expect(compiledWith([])).toEqual([mode, mode, mode])
  })

  it('is refused under other V8 flags, and the pool works without it', () => {
    expect(compiledWith(['--no-opt'])).toEqual(['no cache', 'no cache', 'no cache'])
  })

  it('is not used with --enable-source-maps: the file is required, so its frames map', () => {
    expect(compiledWith(['--enable-source-maps'])).toEqual(['require', 'require', 'require'])
  })
})
