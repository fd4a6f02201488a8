/**
 * The scaling chart (`--svg FILE`): packets per second against the number of consumer worker
 * threads (1, 2) for main -> workers, one panel for one-at-a-time gets and one for batched gets,
 * the completion port beside the SAB + Atomics queue, MessagePort and the native limit. Bars
 * show the median, a thin line the min-max spread, and a label the value. Each panel has its own
 * linear y axis starting at zero (batched figures are an order of magnitude above the others, and
 * one shared axis would flatten the unbatched panel). Plain SVG text, no dependencies.
 */
import { si } from './format.js'
import type { Group, Impl, Machine, MeasuredRow, ScenarioResult } from './report.js'

const SERIES: { impl: Impl; name: string; color: string }[] = [
  { impl: 'port', name: 'CompletionPort', color: '#e8590c' },
  { impl: 'sab', name: 'SAB + Atomics queue (JS)', color: '#1c7ed6' },
  { impl: 'messageport', name: 'MessagePort.postMessage', color: '#2f9e44' },
  { impl: 'native', name: 'native limit (C++)', color: '#495057' },
]
const PANELS: { form: 'get' | 'batch'; title: string }[] = [
  { form: 'get', title: 'get(): one packet per call' },
  { form: 'batch', title: 'batched: postMany 256 / getManyInto up to 256' },
]
const CONSUMERS = [1, 2]

const WIDTH = 960
const HEIGHT = 520
const TOP = 118
const BOTTOM = 440
const LEFT = 78
const RIGHT = 20
const PANEL_GAP = 78 // room for the second panel's own tick labels
const PANEL_WIDTH = (WIDTH - LEFT - RIGHT - PANEL_GAP) / 2

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

/** The SVG document, or undefined when the run measured none of the chart's groups. */
export function renderSvg(scenarios: ScenarioResult[], machine: Machine, date: string, quick: boolean): string | undefined {
  const groups: Group[] = scenarios.flatMap((s) => s.groups).filter((g) => g.chart !== undefined)
  if (groups.length === 0) return undefined
  const find = (form: string, consumers: number, impl: Impl): MeasuredRow | undefined => {
    const group = groups.find((g) => g.chart!.form === form && g.chart!.consumers === consumers)
    const row = group?.rows.find((r) => r.impl === impl)
    return row?.state === 'measured' ? row : undefined
  }
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="19" font-weight="600" fill="#212529">Main thread -&gt; worker consumers: packets per second (higher is better)</text>`,
    `<text x="${WIDTH / 2}" y="49" text-anchor="middle" font-size="12" fill="#495057">${escape(
      `Node ${machine.node}, ${machine.cpu}, ${machine.cores} cores; bar = median of the runs, line = min-max; each panel has its own scale; ${date}${quick ? ' (--quick)' : ''}`,
    )}</text>`,
  )
  // Legend: entries spaced by the length of their labels (about 7 px per character at 13 px).
  const widths = SERIES.map((s) => 20 + s.name.length * 7 + 26)
  let x = (WIDTH - widths.reduce((a, b) => a + b, 0)) / 2
  SERIES.forEach((s, i) => {
    out.push(
      `<rect x="${x}" y="64" width="14" height="14" fill="${s.color}"/>`,
      `<text x="${x + 20}" y="76" font-size="13" fill="#212529">${escape(s.name)}</text>`,
    )
    x += widths[i]!
  })
  out.push(
    `<text transform="translate(20 ${(TOP + BOTTOM) / 2}) rotate(-90)" text-anchor="middle" font-size="13" fill="#212529">packets per second</text>`,
  )
  PANELS.forEach((panel, p) => {
    const x0 = LEFT + p * (PANEL_WIDTH + PANEL_GAP)
    // This panel's y axis: zero to a round value above its highest run.
    const rows = CONSUMERS.flatMap((c) => SERIES.map((s) => find(panel.form, c, s.impl))).filter(
      (r): r is MeasuredRow => r !== undefined,
    )
    const step = niceStep(Math.max(1, ...rows.map((r) => r.max)))
    const yMax = Math.ceil(Math.max(1, ...rows.map((r) => r.max)) / step) * step
    const y = (value: number): number => BOTTOM - (value / yMax) * (BOTTOM - TOP)
    for (let v = 0; v <= yMax + step / 2; v += step) {
      const yy = y(v).toFixed(1)
      out.push(
        `<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${yy}" y2="${yy}" stroke="#e9ecef"/>`,
        `<text x="${x0 - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="12" fill="#495057">${tick(v)}</text>`,
      )
    }
    out.push(
      `<text x="${x0 + PANEL_WIDTH / 2}" y="${TOP - 10}" text-anchor="middle" font-size="14" font-weight="600" fill="#212529">${escape(panel.title)}</text>`,
      `<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${BOTTOM}" y2="${BOTTOM}" stroke="#868e96"/>`,
    )
    const slot = PANEL_WIDTH / CONSUMERS.length
    const barWidth = Math.min(36, (slot - 30) / SERIES.length)
    CONSUMERS.forEach((consumers, c) => {
      const center = x0 + slot * (c + 0.5)
      out.push(
        `<text x="${center}" y="${BOTTOM + 20}" text-anchor="middle" font-size="13" fill="#212529">${consumers} consumer thread${consumers === 1 ? '' : 's'}</text>`,
      )
      SERIES.forEach((s, i) => {
        const bx = center - (barWidth * SERIES.length) / 2 + i * barWidth
        const row = find(panel.form, consumers, s.impl)
        const mid = bx + barWidth / 2
        if (row === undefined) {
          out.push(`<text x="${mid}" y="${BOTTOM - 6}" text-anchor="middle" font-size="10" fill="#868e96">n/a</text>`)
          return
        }
        out.push(
          `<rect x="${(bx + 2).toFixed(1)}" y="${y(row.median).toFixed(1)}" width="${(barWidth - 4).toFixed(1)}" height="${(BOTTOM - y(row.median)).toFixed(1)}" fill="${s.color}"><title>${escape(`${row.label}, ${consumers} consumer(s): ${si(row.median)} packets/s (min ${si(row.min)}, max ${si(row.max)})`)}</title></rect>`,
          `<line x1="${mid}" x2="${mid}" y1="${y(row.min).toFixed(1)}" y2="${y(row.max).toFixed(1)}" stroke="#212529" stroke-width="1.2"/>`,
          `<text x="${mid}" y="${(y(row.max) - 5).toFixed(1)}" text-anchor="middle" font-size="10.5" fill="#212529">${si(row.median)}</text>`,
        )
      })
    })
  })
  out.push(
    `<text x="${LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="${BOTTOM + 46}" text-anchor="middle" font-size="13" fill="#212529">worker threads consuming (the main thread produces)</text>`,
    `<text x="${WIDTH / 2}" y="${HEIGHT - 14}" text-anchor="middle" font-size="11" fill="#868e96">generated by iocp-bench (packages/bench); every figure counts each packet, and a run that loses one fails</text>`,
    '</svg>',
  )
  return `${out.join('\n')}\n`
}
