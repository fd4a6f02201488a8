/**
 * Turns results into text: numbers with SI prefixes, and one table per comparison group with
 * the figure (median), its spread, and each row's ratio to the completion port and to the
 * C++ driver. Shared by the terminal output and the Markdown writer.
 */
import { advantage, measuredRow, type Group, type Row } from './report.js'

/** `12345678` -> `12.3 M`; `33.74` -> `33.7`. About three significant digits. */
export function si(value: number): string {
  const abs = Math.abs(value)
  const [scaled, prefix] =
    abs >= 1e9 ? [value / 1e9, ' G'] : abs >= 1e6 ? [value / 1e6, ' M'] : abs >= 1e3 ? [value / 1e3, ' k'] : [value, '']
  const a = Math.abs(scaled)
  return `${a >= 100 ? scaled.toFixed(0) : a >= 10 ? scaled.toFixed(1) : scaled.toFixed(2)}${prefix}`
}

/** A ratio: `2.31x`, `0.041x`. */
export function times(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-'
  return `${ratio >= 10 ? ratio.toFixed(1) : ratio >= 1 ? ratio.toFixed(2) : ratio.toPrecision(2)}x`
}

export function percent(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-'
  return `${ratio >= 0.1 ? Math.round(ratio * 100) : (ratio * 100).toPrecision(2)}%`
}

/** The column headers of a group's table. */
export function headers(group: Group): string[] {
  const base = [`${group.unit} (median)`, 'spread: min - max', 'port vs row']
  if (group.limit !== undefined) base.push('of C++ driver')
  if (hasLatency(group)) base.push('p50 / p99 us')
  return hasNote(group) ? [...base, 'note'] : base
}

/** Whether a row of the group carries a note (the io scenario's page-cache residency). */
function hasNote(group: Group): boolean {
  return group.rows.some((r) => r.state === 'measured' && r.note !== undefined)
}

function hasLatency(group: Group): boolean {
  return group.rows.some((r) => r.state === 'measured' && r.latency !== undefined)
}

/**
 * One row's cells, after its label: median, spread, how many times better the completion port
 * is than this row ("port vs row", `-` on the port's own row), and this row as a share of the
 * C++ driver.
 */
export function cells(group: Group, row: Row): string[] {
  if (row.state !== 'measured') {
    const text = row.state === 'failed' ? `FAILED: ${row.error}` : `n/a: ${row.reason}`
    return [text, ...headers(group).slice(1).map(() => '')]
  }
  const subject = measuredRow(group, group.subject)
  const limit = measuredRow(group, group.limit)
  const halfRange = row.median > 0 ? ((row.max - row.min) / 2 / row.median) * 100 : 0
  const out = [
    si(row.median),
    `${si(row.min)} - ${si(row.max)} (±${halfRange < 10 ? halfRange.toFixed(1) : Math.round(halfRange)}%)`,
    row.id === group.subject || subject === undefined ? '-' : times(advantage(group, subject, row)),
  ]
  if (group.limit !== undefined) {
    out.push(limit === undefined ? '-' : row.id === limit.id ? '100%' : percent(advantage(group, row, limit)))
  }
  if (hasLatency(group)) {
    out.push(row.latency ? `${row.latency.p50Us.toPrecision(3)} / ${row.latency.p99Us.toPrecision(3)}` : '')
  }
  if (hasNote(group)) out.push(row.note ?? '')
  return out
}

/** A group as an aligned plain-text table. */
export function textTable(group: Group): string {
  const head = ['', ...headers(group)]
  const body = group.rows.map((row) => [row.label, ...cells(group, row)])
  const widths = head.map((h, i) => Math.max(h.length, ...body.filter((b) => !isNote(b)).map((b) => b[i]!.length)))
  const line = (cols: string[]): string => {
    if (isNote(cols)) return `  ${cols[0]!.padEnd(widths[0]!)}  ${cols[1]}`
    return `  ${cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`.trimEnd()
  }
  return [`${group.title}`, line(head), ...body.map(line)].join('\n')
}

/** A row whose figure is replaced by an explanation (unavailable / failed): printed unaligned. */
function isNote(cols: string[]): boolean {
  return cols[1] !== undefined && /^(n\/a|FAILED)/.test(cols[1]) && cols.slice(2).every((c) => c === '')
}
