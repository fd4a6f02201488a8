// A task module is loaded the way Node would load it: a `.cjs` file, or a `.js` file in a
// CommonJS package scope, is required (as Piscina does, so a worker never starts the ES module
// loader for it); a `.mjs` file, or a `.js` file under `"type": "module"`, is imported. Each
// form exposes the same exports: the default, named functions, and functions hung off a
// CommonJS `module.exports`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { destroyPools, makePool } from '../fixtures/harness.js'

const root = mkdtempSync(join(tmpdir(), 'iocp-task-formats-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
afterEach(destroyPools)

/** Writes `file` (and a package.json with `type`, if given) into a fresh directory; returns its path. */
function taskFile(name: string, file: string, source: string, type?: 'module' | 'commonjs'): string {
  const dir = join(root, name)
  mkdirSync(dir)
  if (type !== undefined) writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }))
  writeFileSync(join(dir, file), source)
  return join(dir, file)
}

const COMMONJS = `
const { isMainThread } = require('node:worker_threads')
module.exports = (x) => ({ format: typeof require === 'function' ? 'commonjs' : 'module', x, isMainThread })
module.exports.twice = (x) => 2 * x
`
const ESM = `
import { isMainThread } from 'node:worker_threads'
export default (x) => ({ format: typeof require === 'function' ? 'commonjs' : 'module', x, isMainThread })
export function twice(x) { return 2 * x }
`

describe('task module formats', () => {
  const cases = [
    { what: '.cjs', file: () => taskFile('cjs', 'task.cjs', COMMONJS), format: 'commonjs' },
    { what: '.js in a "type": "commonjs" scope', file: () => taskFile('js-cjs', 'task.js', COMMONJS, 'commonjs'), format: 'commonjs' },
    { what: '.js in a scope with no "type"', file: () => taskFile('js-untyped', 'task.js', COMMONJS, undefined), format: 'commonjs' },
    { what: '.js in a "type": "module" scope', file: () => taskFile('js-esm', 'task.js', ESM, 'module'), format: 'module' },
    { what: '.mjs', file: () => taskFile('mjs', 'task.mjs', ESM), format: 'module' },
  ]
  for (const c of cases) {
    it(`runs the default and a named export of a ${c.what} task module`, async () => {
      const pool = makePool({ filename: c.file(), threads: 1 })
      expect(await pool.run(5)).toEqual({ format: c.format, x: 5, isMainThread: false })
      expect(await pool.run(21, { name: 'twice' })).toBe(42)
    })
  }

  it('reports a CommonJS module that throws as it loads as TaskModuleError', async () => {
    const pool = makePool({ filename: taskFile('cjs-throws', 'task.cjs', "throw new Error('broken on purpose')"), threads: 1 })
    await expect(pool.run(1)).rejects.toMatchObject({ name: 'TaskModuleError', cause: { message: 'broken on purpose' } })
  })
})
