// Runs one transpiled vitest suite under the node that runs this file (a foreign one: arm64 under
// qemu-user, Windows under wine) through the vitest shim, and writes its result to a JSON file:
//
//   node run-suite.mjs <suite.js> <result.json> <timeoutMs>
//
// The result goes to a file, not only to stdout, because node for Windows under wine must have its
// stdout on a file (a pipe gives EBADF), and a crash must still leave "no result" visibly.
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { inspect } from 'node:util'

const [suiteFile, resultFile, timeoutArg] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg)
if (!suiteFile || !resultFile || !(timeoutMs > 0)) {
  console.error('usage: node run-suite.mjs <suite.js> <result.json> <timeoutMs>')
  process.exit(2)
}

const tests = []
let counts = { passed: 0, failed: 0 }
try {
  await import(pathToFileURL(resolve(suiteFile)).href)
  const { run } = await import('vitest')
  counts = await run({
    timeoutMs,
    report: (r) => {
      tests.push({ name: r.name, ok: r.ok, ms: r.ms, error: r.ok ? undefined : inspect(r.error) })
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${r.ms} ms)`)
      if (!r.ok) console.log(inspect(r.error).replace(/^/gm, '       '))
    },
  })
} catch (error) {
  // the file did not load: counted as one failure, as vitest counts a failed suite
  counts = { passed: counts.passed, failed: counts.failed + 1 }
  tests.push({ name: '(load)', ok: false, ms: 0, error: inspect(error) })
  console.log(`FAIL (load) ${inspect(error)}`)
}
writeFileSync(resultFile, JSON.stringify({ ...counts, tests, node: process.version, platform: `${process.platform}-${process.arch}` }, null, 1))
console.log(`${counts.passed} passed, ${counts.failed} failed`)
// a suite that leaves a worker or a handle behind must not hang the run: its tests are counted
process.exit(counts.failed > 0 ? 1 : 0)
