/**
 * Loading a task module and finding its functions, with Piscina's rules: the default export
 * (or `module.exports`) is the task function, other exports are named tasks, and a CommonJS
 * module may also hang its functions off `module.exports`. `onPacket` is the raw-packet handler.
 *
 * Worker side; one module per worker, loaded once.
 */
import { readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { bundleRequire, isThenable } from '../../shared.js'

/** A task function, as the task module exports it. */
export type TaskFunction = (payload: unknown, ctx: unknown) => unknown

/** The export that handles raw packets posted with `pool.post()`. */
export const PACKET_HANDLER = 'onPacket'

/** The loaded namespace of a task module. */
export type TaskModule = Record<string, unknown>

/**
 * How an ES task module is imported: import(), from where Node's own loader compiled this code.
 * dist/loader.cjs, which compiles the bundle through node:vm (src/loader.cts), hands over its
 * own import(): code that node:vm compiled can import() only behind an experimental flag.
 */
let importModule = (url: string): Promise<unknown> => import(url)

/** Internal (dist/loader.cjs): the import() that ES task modules are loaded with. */
export function setDynamicImport(load: (url: string) => Promise<unknown>): void {
  importModule = load
}

/**
 * Imports the module at `filename` (an absolute path), ESM or CommonJS. An export that is a
 * promise (Piscina's delayed start: `export default (async () => handler)()`, or
 * `module.exports = promise`) is awaited here, once per worker, and stands for what it resolves
 * to; a rejected one fails the load.
 */
export async function loadTaskModule(filename: string): Promise<TaskModule> {
  const namespace = isCommonJs(filename) ? requireNamespace(filename) : ((await importModule(pathToFileURL(filename).href)) as TaskModule)
  let module: TaskModule | undefined
  for (const key of Object.keys(namespace)) {
    const value = namespace[key]
    if (!isThenable(value)) continue
    module ??= { ...namespace }
    module[key] = await value
  }
  return module ?? namespace
}

/**
 * The function exported as `name`, looked up as Piscina does: the export itself, else a
 * property of the default export (a CommonJS `module.exports` object, or a transpiled module's
 * `exports.default`). `undefined` if there is none.
 */
export function findFunction(module: TaskModule, name: string): TaskFunction | undefined {
  const direct = module[name]
  if (typeof direct === 'function') return direct as TaskFunction
  const fallback = module.default
  if (fallback !== null && (typeof fallback === 'object' || typeof fallback === 'function')) {
    const nested = (fallback as Record<string, unknown>)[name]
    if (typeof nested === 'function') return nested as TaskFunction
  }
  return undefined
}

/**
 * Whether Node loads `filename` as CommonJS: a `.cjs` file, or a `.js` file whose nearest
 * package.json does not say `"type": "module"`. Such a module is required, as Piscina does:
 * a worker then never starts Node's ES module loader (about 10 ms of its start). Anything else
 * (ES modules, and extensions that only a loader hook knows) goes through import().
 */
function isCommonJs(filename: string): boolean {
  const extension = extname(filename)
  if (extension === '.cjs') return true
  if (extension !== '.js') return false
  for (let dir = dirname(filename); ; ) {
    let text: string | undefined
    try {
      text = readFileSync(join(dir, 'package.json'), 'utf8')
    } catch {
      // none here
    }
    if (text !== undefined) {
      try {
        return (JSON.parse(text) as { type?: unknown }).type !== 'module'
      } catch {
        return false // let import() report the broken package.json as Node would
      }
    }
    const parent = dirname(dir)
    if (parent === dir) return true
    dir = parent
  }
}

/**
 * A CommonJS module as import() would present it: `module.exports` as the default export, and
 * its own properties as named exports.
 */
function requireNamespace(filename: string): TaskModule {
  const exports = bundleRequire(filename) as unknown
  const namespace: TaskModule = {}
  if (exports !== null && (typeof exports === 'object' || typeof exports === 'function')) {
    for (const key of Object.keys(exports)) namespace[key] = (exports as Record<string, unknown>)[key]
  }
  namespace.default = exports
  return namespace
}
