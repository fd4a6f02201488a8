// The subset of vitest that node-iocp's suites use (describe, it/test, it.each, the four hooks,
// expect), for running those suites unchanged under a node that vitest cannot run in: node for
// linux-arm64 under qemu-user and node for Windows under wine, where vitest's native
// dependencies (rollup, esbuild) have no binary. Assertions are vitest's own: @vitest/expect's
// matchers over chai, set up as vitest sets them up, so a matcher means here what it means there.
//
// Tests register while the suite file is imported; run() (called by run-suite.mjs) then runs
// them in order, one at a time, like vitest within one file: beforeAll/afterAll once per
// describe, beforeEach/afterEach around each test from the outermost describe inwards (after
// hooks innermost first). A test fails on a thrown error, a rejected promise, or its timeout.
import * as chai from 'chai'
import {
  ASYMMETRIC_MATCHERS_OBJECT,
  GLOBAL_EXPECT,
  JestAsymmetricMatchers,
  JestChaiExpect,
  JestExtend,
  getState,
  setState,
} from '@vitest/expect'
import { format } from 'node:util'

chai.use(JestExtend)
chai.use(JestChaiExpect)
chai.use(JestAsymmetricMatchers)

/** vitest's expect, as vitest's createExpect() builds it (without snapshots and polling). */
export const expect = (value, message) => {
  const { assertionCalls } = getState(expect)
  setState({ assertionCalls: assertionCalls + 1 }, expect)
  return chai.expect(value, message)
}
Object.assign(expect, chai.expect)
Object.assign(expect, globalThis[ASYMMETRIC_MATCHERS_OBJECT])
expect.getState = () => getState(expect)
expect.setState = (state) => setState(state, expect)
expect.extend = (matchers) => chai.expect.extend(expect, matchers)
setState({ assertionCalls: 0, isExpectingAssertions: false, isExpectingAssertionsError: null,
  expectedAssertionsNumber: null, expectedAssertionsNumberErrorGen: null, expect }, expect)
globalThis[GLOBAL_EXPECT] = expect

function newSuite (name, parent) {
  return { name, parent, children: [], beforeAll: [], afterAll: [], beforeEach: [], afterEach: [] }
}
const root = newSuite('', null)
let current = root

/** Groups tests; hooks registered inside apply to its tests only. */
export function describe (name, body) {
  const suite = newSuite(String(name), current)
  current.children.push({ suite })
  const outer = current
  current = suite
  try {
    const r = body()
    if (r && typeof r.then === 'function') throw new Error(`describe('${name}') must be synchronous`)
  } finally {
    current = outer
  }
}

function timeoutOf (options) {
  if (typeof options === 'number') return options
  if (options && typeof options.timeout === 'number') return options.timeout
  return undefined
}

/** One test; its own `timeout` (ms) is raised to run-suite's --timeout when that is longer (emulators are slow). */
export function it (name, fn, options) {
  current.children.push({ test: { name: String(name), fn, timeout: timeoutOf(options) } })
}
export const test = it

// vitest's printf-style titles: %s %d %i %j %o, one argument each
function title (template, args) {
  let i = 0
  return template.replace(/%[sdijoO%]/g, (token) => {
    if (token === '%%') return '%'
    return format(token === '%j' ? '%j' : '%s', args[i++])
  })
}

it.each = (cases) => (name, fn, options) => {
  for (const c of cases) {
    const args = Array.isArray(c) ? c : [c]
    it(title(name, args), () => fn(...args), options)
  }
}
describe.each = (cases) => (name, body) => {
  for (const c of cases) {
    const args = Array.isArray(c) ? c : [c]
    describe(title(name, args), () => body(...args))
  }
}
for (const f of [it, describe]) {
  f.skip = () => {}
  f.todo = () => {}
}

export const beforeAll = (fn) => { current.beforeAll.push(fn) }
export const afterAll = (fn) => { current.afterAll.push(fn) }
export const beforeEach = (fn) => { current.beforeEach.push(fn) }
export const afterEach = (fn) => { current.afterEach.push(fn) }

function withTimeout (promise, ms, what) {
  let timer
  const expired = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out in ${ms} ms`)), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

async function call (fn, ms, what) {
  await withTimeout(Promise.resolve().then(() => fn()), ms, what)
}

function chain (suite) {
  const out = []
  for (let s = suite; s; s = s.parent) out.unshift(s)
  return out
}

/**
 * Runs every registered test; `report(result)` gets `{ name, ok, error?, ms }` per test.
 * Resolves to { passed, failed }.
 */
export async function run ({ timeoutMs, report }) {
  const counts = { passed: 0, failed: 0 }
  async function visit (suite, path) {
    try {
      for (const hook of suite.beforeAll) await call(hook, timeoutMs, 'beforeAll')
    } catch (error) {
      // as in vitest: a failing beforeAll fails every test of its describe
      const fail = (s, p) => {
        for (const child of s.children) {
          if (child.test) { counts.failed++; report({ name: [...p, child.test.name].join(' > '), ok: false, error, ms: 0 }) }
          else fail(child.suite, [...p, child.suite.name])
        }
      }
      fail(suite, path)
      return
    }
    for (const child of suite.children) {
      if (child.suite) { await visit(child.suite, [...path, child.suite.name]); continue }
      const t = child.test
      const name = [...path, t.name].join(' > ')
      const started = Date.now()
      const suites = chain(suite)
      let error
      setState({ assertionCalls: 0, currentTestName: name }, expect)
      try {
        for (const s of suites) for (const hook of s.beforeEach) await call(hook, timeoutMs, 'beforeEach')
        await call(t.fn, Math.max(t.timeout ?? 0, timeoutMs), 'test')
      } catch (e) {
        error = e
      }
      for (const s of suites.slice().reverse()) {
        for (const hook of s.afterEach) {
          try { await call(hook, timeoutMs, 'afterEach') } catch (e) { error ??= e }
        }
      }
      if (error === undefined) counts.passed++
      else counts.failed++
      report({ name, ok: error === undefined, error, ms: Date.now() - started })
    }
    for (const hook of suite.afterAll) {
      try {
        await call(hook, timeoutMs, 'afterAll')
      } catch (error) {
        counts.failed++
        report({ name: [...path, '(afterAll)'].join(' > '), ok: false, error, ms: 0 })
      }
    }
  }
  await visit(root, [])
  return counts
}
