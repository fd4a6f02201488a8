/**
 * Loading a task module and finding its functions, with Piscina's rules: the default export
 * (or `module.exports`) is the task function, other exports are named tasks, and a CommonJS
 * module may also hang its functions off `module.exports`. `onPacket` is the raw-packet handler.
 *
 * Worker side; one module per worker, loaded once.
 */
import { pathToFileURL } from 'node:url'
import { isThenable } from '../../shared.js'

/** A task function, as the task module exports it. */
export type TaskFunction = (payload: unknown, ctx: unknown) => unknown

/** The export that handles raw packets posted with `pool.post()`. */
export const PACKET_HANDLER = 'onPacket'

/** The loaded namespace of a task module. */
export type TaskModule = Record<string, unknown>

/**
 * Imports the module at `filename` (an absolute path), ESM or CommonJS. An export that is a
 * promise (Piscina's delayed start: `export default (async () => handler)()`, or
 * `module.exports = promise`) is awaited here, once per worker, and stands for what it resolves
 * to; a rejected one fails the load.
 */
export async function loadTaskModule(filename: string): Promise<TaskModule> {
  const namespace = (await import(pathToFileURL(filename).href)) as TaskModule
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
