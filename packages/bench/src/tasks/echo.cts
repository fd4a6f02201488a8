/**
 * The tiny task of the pool scenario: returns its input. The same module is given to PortPool
 * and to Piscina (both take a module whose default export is the task function); poolifier
 * wraps the same function in its `ThreadWorker` (`../baselines/echo-poolifier.ts`).
 *
 * CommonJS on purpose: Piscina require()s its task module first, and on Node 20 require() of an
 * ES module takes the require(esm) path, which aborted the process under load in our suites.
 */
function echo<T>(input: T): T {
  return input
}

export = echo
