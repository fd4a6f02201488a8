/**
 * iocp-bench: measures node-iocp's completion port beside what a user would pick instead (a
 * SharedArrayBuffer + Atomics queue, MessagePort, Piscina, poolifier) and beside the native
 * limit (the same C++ engine driven from C++), in one run on one machine.
 *
 *   iocp-bench [--quick] [--only NAME[,NAME...]] [--json FILE] [--svg FILE] [--markdown FILE]
 *
 * Tables go to stdout, progress to stderr. Exit status: 0 when every row was measured (or is
 * unavailable here, e.g. a peer that does not exist yet), 1 when a row failed (a lost packet, a
 * crashed worker, a hang), 2 for a bad command line.
 */
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { textTable } from './format.js'
import { NativeLimit } from './limit.js'
import { describeMachine, machineLine } from './machine.js'
import { writeMarkdown } from './markdown.js'
import { failed, type Group, type RunResult, type ScenarioResult } from './report.js'
import { budgetFor, type Context } from './scenario.js'
import { scenarios } from './scenarios/index.js'
import { renderSvg } from './svg.js'
import { checkTargets } from './targets.js'

const NAMES = scenarios.map((s) => s.name)

const USAGE = `usage: iocp-bench [--quick] [--only NAME[,NAME...]] [--json FILE] [--svg FILE] [--markdown FILE]

  --quick          fewer and shorter runs: the whole run takes well under a minute on 2 cores
  --only NAMES     run only these scenarios (comma-separated): ${NAMES.join(', ')}
  --json FILE      write every figure (each run of each row) and the machine as JSON
  --svg FILE       draw the chart: fanout's packets/s against consumer threads, and the pool
                   comparison (needs the fanout or the pool scenario)
  --markdown FILE  write the tables into FILE, between <!-- iocp-bench:start --> and
                   <!-- iocp-bench:end --> (created or appended if the markers are missing)
  -h, --help       print this and exit
`

class UsageError extends Error {}

interface Options {
  quick: boolean
  only: string[]
  json: string | undefined
  svg: string | undefined
  markdown: string | undefined
}

function parse(argv: string[]): Options | 'help' {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        only: { type: 'string' },
        json: { type: 'string' },
        svg: { type: 'string' },
        markdown: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  if (values['help'] === true) return 'help'
  const file = (flag: string): string | undefined => {
    const value = values[flag] as string | undefined
    if (value !== undefined && (value === '' || value.startsWith('-'))) {
      throw new UsageError(`--${flag} needs a file name, got '${value}'`)
    }
    return value
  }
  let only = [...NAMES]
  if (values['only'] !== undefined) {
    only = (values['only'] as string).split(',').map((n) => n.trim()).filter((n) => n !== '')
    if (only.length === 0) throw new UsageError(`--only needs one or more of: ${NAMES.join(', ')}`)
    for (const name of only) {
      if (!NAMES.includes(name)) throw new UsageError(`--only: unknown scenario '${name}' (expected one of: ${NAMES.join(', ')})`)
    }
  }
  const options: Options = { quick: values['quick'] === true, only, json: file('json'), svg: file('svg'), markdown: file('markdown') }
  if (options.svg !== undefined && !only.includes('fanout') && !only.includes('pool')) {
    throw new UsageError("--svg draws the fanout and pool scenarios, which --only leaves out (add 'fanout' or 'pool')")
  }
  return options
}

async function main(argv: string[]): Promise<number> {
  let options: Options | 'help'
  try {
    options = parse(argv)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`iocp-bench: ${error.message}\n\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const { quick, only, json, svg, markdown } = options
  const started = performance.now()
  const budget = budgetFor(quick)
  const machine = describeMachine()
  const command = ['iocp-bench', ...argv].join(' ')
  const out = (text: string): void => void process.stdout.write(`${text}\n`)
  out(`node-iocp benchmarks${quick ? ' (--quick: a smoke check, not results)' : ''}`)
  out(machineLine(machine).replace(/, [\d.]+ at end$/, '')) // the end load is printed last
  out(`${budget.runs} timed runs per row after a warm-up; figures are medians. "port vs row": how many times better the`)
  out('completion port is than that row; "of C++ driver": the row as a share of the same engine driven from a C++ program\n(a reference point, not an upper bound: a row can exceed 100%).')

  const context: Context = {
    budget,
    limit: new NativeLimit(budget),
    progress: (message) => void process.stderr.write(`  .. ${message}\n`),
  }
  const results: ScenarioResult[] = []
  for (const scenario of scenarios.filter((s) => only.includes(s.name))) {
    const t0 = performance.now()
    let groups: Group[]
    try {
      groups = await scenario.run(context)
    } catch (error) {
      groups = [
        {
          id: scenario.name,
          title: scenario.title,
          unit: '',
          better: 'higher',
          subject: '',
          rows: [failed(`${scenario.name}.error`, 'scenario', 'port', error)],
        },
      ]
    }
    const result: ScenarioResult = {
      name: scenario.name,
      title: scenario.title,
      summary: scenario.summary,
      groups,
      seconds: (performance.now() - t0) / 1000,
    }
    results.push(result)
    out('')
    out(`== ${result.title} (${result.seconds.toFixed(1)} s) ==`)
    for (const group of groups) {
      out('')
      out(textTable(group))
    }
  }

  const targets = checkTargets(results)
  machine.loadEnd = loadavg()[0] ?? 0
  const run: RunResult = {
    tool: 'iocp-bench',
    date: new Date().toISOString(),
    command,
    quick,
    machine,
    scenarios: results,
    targets,
    seconds: (performance.now() - started) / 1000,
  }
  if (targets.some((t) => t.status !== 'not measured')) {
    out('')
    out('== Targets, checked against this run ==')
    const width = Math.max(...targets.map((t) => t.target.length))
    for (const t of targets) out(`  ${t.target.padEnd(width)}  ${t.status.padEnd(12)}  ${t.measured}`)
  }
  out('')
  out(`load average ${machine.loadStart.toFixed(2)} at start, ${machine.loadEnd.toFixed(2)} at end; ${run.seconds.toFixed(1)} s in all`)

  if (json !== undefined) writeFileSync(json, `${JSON.stringify(run, null, 2)}\n`)
  let svgWritten: string | undefined
  if (svg !== undefined) {
    const chart = renderSvg(results, machine, run.date.slice(0, 10), quick)
    if (chart !== undefined) {
      writeFileSync(svg, chart)
      svgWritten = svg
    } else {
      process.stderr.write('iocp-bench: nothing measured for the chart; no SVG written\n')
    }
  }
  if (markdown !== undefined) writeMarkdown(run, markdown, svgWritten)
  for (const [flag, file] of [['json', json], ['svg', svgWritten], ['markdown', markdown]] as const) {
    if (file !== undefined) process.stderr.write(`iocp-bench: wrote ${file} (--${flag})\n`)
  }

  const failures = results.flatMap((s) => s.groups.flatMap((g) => g.rows)).filter((r) => r.state === 'failed')
  if (failures.length > 0) {
    process.stderr.write(`iocp-bench: ${failures.length} row(s) FAILED:\n`)
    for (const f of failures) if (f.state === 'failed') process.stderr.write(`  ${f.id}: ${f.error}\n`)
    return 1
  }
  return 0
}

// A run waits on workers that some peers unreference (poolifier does): with nothing else
// holding the event loop, Node would end the process in the middle of a row, silently and with
// status 0. This interval holds the loop until main() settles; were the loop to empty anyway,
// the 'exit' guard below turns it into a failure that says so.
const keepAlive = setInterval(() => {}, 1 << 30)
let settled = false
process.on('exit', (code) => {
  if (settled || code !== 0) return
  process.stderr.write('iocp-bench: the process was ending before the run finished; treating it as a failure\n')
  process.exitCode = 1
})
// Pools and ports may keep the event loop alive after their last use: exit explicitly.
main(process.argv.slice(2)).then(
  (code) => {
    settled = true
    clearInterval(keepAlive)
    process.exit(code)
  },
  (error: unknown) => {
    settled = true
    clearInterval(keepAlive)
    process.stderr.write(`iocp-bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
