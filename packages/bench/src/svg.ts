/**
 * The chart (`--svg FILE`), in up to two parts, each drawn when its scenario ran:
 *
 * - fanout: packets per second against the number of consumer worker threads (1, 2) for
 *   main -> workers, one panel for one-at-a-time gets and one for batched gets, the completion
 *   port beside the SAB + Atomics queue, MessagePort and the C++ driver of the same engine;
 * - pool: tasks per second of PortPool, Piscina and poolifier, at 64 and 1000 tasks in flight
 *   and at 64 on a busy machine.
 *
 * Bars show the median, a thin line at the bar's edge the min-max spread, and a label on the
 * bar its value. Each panel has its own linear y axis starting at zero (batched figures are an
 * order of magnitude above the others, and one shared axis would flatten the unbatched panel).
 * Every bar has a tooltip (`<title>`), and so does the document. Plain SVG text, no dependencies.
 */
import { si } from './format.js'
import type { Group, Impl, Machine, MeasuredRow, ScenarioResult } from './report.js'

interface Series {
  impl: Impl
  name: string
  color: string
}

const FANOUT_SERIES: Series[] = [
  { impl: 'port', name: 'CompletionPort', color: '#e8590c' },
  { impl: 'sab', name: 'SAB + Atomics queue (JS)', color: '#1c7ed6' },
  { impl: 'messageport', name: 'MessagePort.postMessage', color: '#2f9e44' },
  { impl: 'native', name: 'C++ driver of the same engine', color: '#495057' },
]
const POOL_SERIES: Series[] = [
  { impl: 'port', name: 'PortPool', color: '#e8590c' },
  { impl: 'piscina', name: 'Piscina', color: '#7048e8' },
  { impl: 'poolifier', name: 'poolifier', color: '#0c8599' },
]
const PANELS: { form: 'get' | 'batch'; title: string }[] = [
  { form: 'get', title: 'get(): one packet per call' },
  { form: 'batch', title: 'batched: postMany 256 / getManyInto up to 256' },
]
const CONSUMERS = [1, 2]

const WIDTH = 960
const LEFT = 78
const RIGHT = 20
const PANEL_GAP = 78 // room for the second panel's own tick labels
const HALF_WIDTH = (WIDTH - LEFT - RIGHT - PANEL_GAP) / 2
/** Height of one part: header (title, legend, panel titles), plot, axis labels. */
const HEADER = 118
const PLOT = 322
const FOOTER = 60
const PART = HEADER + PLOT + FOOTER
const CREDIT = 34

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A tick label: `0`, `50 M`, `2.5 M`, `500 k`. */
function tick(value: number): string {
  if (value === 0) return '0'
  const [scaled, prefix] = value >= 1e9 ? [value / 1e9, ' G'] : value >= 1e6 ? [value / 1e6, ' M'] : value >= 1e3 ? [value / 1e3, ' k'] : [value, '']
  return `${Number(scaled.toPrecision(3))}${prefix}`
}

/** A round step for about five ticks up to `max`. */
function niceStep(max: number): number {
  const raw = max / 5
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const normalized = raw / magnitude
  return (normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 2.5 ? 2.5 : normalized <= 5 ? 5 : 10) * magnitude
}

/** One category of a panel: its axis label, and each series' row (undefined: not measured). */
interface Category {
  label: string
  rows: Array<MeasuredRow | undefined>
}

/** A part's title, subtitle and legend, from `top`. */
function header(out: string[], top: number, title: string, subtitle: string, series: Series[]): void {
  out.push(
    `<text x="${WIDTH / 2}" y="${top + 28}" text-anchor="middle" font-size="19" font-weight="600" fill="#212529">${escape(title)}</text>`,
    `<text x="${WIDTH / 2}" y="${top + 49}" text-anchor="middle" font-size="12" fill="#495057">${escape(subtitle)}</text>`,
  )
  // Legend: entries spaced by the length of their labels (about 7 px per character at 13 px).
  const widths = series.map((s) => 20 + s.name.length * 7 + 26)
  let x = (WIDTH - widths.reduce((a, b) => a + b, 0)) / 2
  series.forEach((s, i) => {
    out.push(
      `<rect x="${x}" y="${top + 64}" width="14" height="14" fill="${s.color}"/>`,
      `<text x="${x + 20}" y="${top + 76}" font-size="13" fill="#212529">${escape(s.name)}</text>`,
    )
    x += widths[i]!
  })
}

/** One panel: bars per category and series, on its own y axis from 0. */
function panel(
  out: string[],
  x0: number,
  width: number,
  top: number,
  title: string,
  unit: string,
  series: Series[],
  categories: Category[],
): void {
  const plotTop = top + HEADER
  const bottom = plotTop + PLOT
  const rows = categories.flatMap((c) => c.rows).filter((r): r is MeasuredRow => r !== undefined)
  const highest = Math.max(1, ...rows.map((r) => r.max))
  const step = niceStep(highest)
  const yMax = Math.ceil(highest / step) * step
  const y = (value: number): number => bottom - (value / yMax) * (bottom - plotTop)
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const yy = y(v).toFixed(1)
    out.push(
      `<line x1="${x0}" x2="${x0 + width}" y1="${yy}" y2="${yy}" stroke="#e9ecef"/>`,
      `<text x="${x0 - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="12" fill="#495057">${tick(v)}</text>`,
    )
  }
  out.push(
    `<text x="${x0 + width / 2}" y="${plotTop - 10}" text-anchor="middle" font-size="14" font-weight="600" fill="#212529">${escape(title)}</text>`,
    `<line x1="${x0}" x2="${x0 + width}" y1="${bottom}" y2="${bottom}" stroke="#868e96"/>`,
  )
  const slot = width / categories.length
  const barWidth = Math.min(44, (slot - 30) / series.length)
  categories.forEach((category, c) => {
    const center = x0 + slot * (c + 0.5)
    out.push(`<text x="${center}" y="${bottom + 20}" text-anchor="middle" font-size="13" fill="#212529">${escape(category.label)}</text>`)
    series.forEach((s, i) => {
      const bx = center - (barWidth * series.length) / 2 + i * barWidth
      const row = category.rows[i]
      const mid = bx + barWidth / 2
      if (row === undefined) {
        out.push(`<text x="${mid}" y="${bottom - 6}" text-anchor="middle" font-size="10" fill="#868e96">n/a</text>`)
        return
      }
      const barTop = y(row.median)
      const edge = bx + barWidth - 5
      out.push(
        `<rect x="${(bx + 2).toFixed(1)}" y="${barTop.toFixed(1)}" width="${(barWidth - 4).toFixed(1)}" height="${(bottom - barTop).toFixed(1)}" fill="${s.color}"><title>${escape(`${row.label}, ${category.label}: ${si(row.median)} ${unit} (min ${si(row.min)}, max ${si(row.max)})`)}</title></rect>`,
        `<line x1="${edge.toFixed(1)}" x2="${edge.toFixed(1)}" y1="${y(row.min).toFixed(1)}" y2="${y(row.max).toFixed(1)}" stroke="#212529" stroke-width="1.2"/>`,
        // The value sits on the bar: just above its top.
        `<text x="${mid.toFixed(1)}" y="${(barTop - 4).toFixed(1)}" text-anchor="middle" font-size="10.5" fill="#212529">${si(row.median)}</text>`,
      )
    })
  })
}

/** The SVG document, or undefined when the run measured none of the chart's groups. */
export function renderSvg(scenarios: ScenarioResult[], machine: Machine, date: string, quick: boolean): string | undefined {
  const groups: Group[] = scenarios.flatMap((s) => s.groups)
  const fanout = groups.filter((g) => g.chart !== undefined)
  const pools = groups.filter((g) => g.poolChart !== undefined)
  if (fanout.length === 0 && pools.length === 0) return undefined
  const measuredOf = (group: Group | undefined, impl: Impl): MeasuredRow | undefined => {
    const row = group?.rows.find((r) => r.impl === impl)
    return row?.state === 'measured' ? row : undefined
  }
  const parts = (fanout.length > 0 ? 1 : 0) + (pools.length > 0 ? 1 : 0)
  const height = parts * PART + CREDIT
  const machineText = `Node ${machine.node}, ${machine.cpu}, ${machine.cores} cores; bar = median of the runs, line = min-max; each panel has its own scale; ${date}${quick ? ' (--quick)' : ''}`
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<title>${escape(`node-iocp benchmarks: ${[fanout.length > 0 ? 'packets per second from the main thread to worker consumers' : '', pools.length > 0 ? 'pool round trips per second (PortPool, Piscina, poolifier)' : ''].filter((t) => t !== '').join('; ')} (${machineText})`)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
  )
  let top = 0
  if (fanout.length > 0) {
    header(out, top, 'Main thread -> worker consumers: packets per second (higher is better)', machineText, FANOUT_SERIES)
    out.push(
      `<text transform="translate(20 ${top + HEADER + PLOT / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#212529">packets per second</text>`,
    )
    PANELS.forEach((p, i) => {
      const categories = CONSUMERS.map((consumers) => {
        const group = fanout.find((g) => g.chart!.form === p.form && g.chart!.consumers === consumers)
        return {
          label: `${consumers} consumer thread${consumers === 1 ? '' : 's'}`,
          rows: FANOUT_SERIES.map((s) => measuredOf(group, s.impl)),
        }
      })
      panel(out, LEFT + i * (HALF_WIDTH + PANEL_GAP), HALF_WIDTH, top, p.title, 'packets/s', FANOUT_SERIES, categories)
    })
    out.push(
      `<text x="${LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="${top + HEADER + PLOT + 46}" text-anchor="middle" font-size="13" fill="#212529">worker threads consuming (the main thread produces)</text>`,
    )
    top += PART
  }
  if (pools.length > 0) {
    header(out, top, 'Pool round trip of a tiny task: tasks per second (higher is better)', machineText, POOL_SERIES)
    out.push(
      `<text transform="translate(20 ${top + HEADER + PLOT / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#212529">tasks per second</text>`,
    )
    const categories = pools.map((group) => ({
      label: group.poolChart!,
      rows: POOL_SERIES.map((s) => measuredOf(group, s.impl)),
    }))
    panel(out, LEFT, WIDTH - LEFT - RIGHT, top, 'same task, same thread count; busy machine: one CPU-bound thread per core spins beside the pool', 'tasks/s', POOL_SERIES, categories)
    out.push(
      `<text x="${LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="${top + HEADER + PLOT + 46}" text-anchor="middle" font-size="13" fill="#212529">tasks in flight</text>`,
    )
    top += PART
  }
  out.push(
    `<text x="${WIDTH / 2}" y="${height - 14}" text-anchor="middle" font-size="11" fill="#868e96">generated by iocp-bench (packages/bench); every figure counts each packet or task, and a run that loses one fails</text>`,
    '</svg>',
  )
  return `${out.join('\n')}\n`
}
