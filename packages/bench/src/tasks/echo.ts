/**
 * The tiny task of the pool scenario: returns its input. The same module is given to PortPool
 * and to Piscina (both take a module whose default export is the task function); poolifier
 * wraps the same function in its `ThreadWorker` (`../baselines/echo-poolifier.ts`).
 */
export default function echo<T>(input: T): T {
  return input
}
