/**
 * Types that let a pool know its task module: `new PortPool<typeof import('./task.js')>(…)`
 * makes `run(payload, { name })` check the payload and type the result of each named export.
 * Without a type argument every task takes and returns `any`, as with Piscina.
 */

/** What a task module exports as a task: a function `(payload, ctx)`, or a promise of one. */
type TaskExport = ((payload: any, ctx: any) => unknown) | PromiseLike<(payload: any, ctx: any) => unknown>

/** The task function behind export `N` of `Tasks` (a promised handler is unwrapped). */
type TaskFunctionOf<Tasks, N> = N extends keyof Tasks ? Awaited<Tasks[N]> : never

/**
 * The names `run()` accepts for a pool of the task module type `Tasks`: its exports that are
 * task functions (or promises of them). `string` for an untyped pool.
 */
export type TaskName<Tasks> = 0 extends 1 & Tasks
  ? string
  : { [K in keyof Tasks]: Tasks[K] extends TaskExport ? K : never }[keyof Tasks] & string

/** The payload of task `N` of `Tasks`: its first parameter (`any` for an untyped pool). */
export type TaskPayload<Tasks, N> = 0 extends 1 & Tasks
  ? any
  : TaskFunctionOf<Tasks, N> extends (payload: infer P, ...rest: never[]) => unknown
    ? P
    : never

/** What `run()` resolves with for task `N` of `Tasks`: its return value, awaited. */
export type TaskResult<Tasks, N> = 0 extends 1 & Tasks
  ? any
  : TaskFunctionOf<Tasks, N> extends (...args: never[]) => infer R
    ? Awaited<R>
    : never
