// The fax service example (examples/fax-service): provider threads post FAX_DEV_STATUS packets
// keyed by job to the service's PortPool, which handles each job's status changes in order and
// logs them. Run in-process (every change handled, in order, each job ending in a final status)
// and as the one command a user runs.
import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

interface LogEntry {
  seq: number
  statusId: number
  line: string
}
interface FaxModule {
  runFaxService(options: {
    providers?: number
    jobs?: number
    concurrency?: number
    threads?: number
    print?: (line: string) => void
  }): Promise<{ jobs: Map<number, LogEntry[]>; posted: number; summary: Record<string, number>; failures: unknown[] }>
  statusName(statusId: number): string
}

const MAIN = new URL('../../examples/fax-service/main.mjs', import.meta.url)

describe('fax service example', () => {
  it("handles every status change of every job, each job's in order", async () => {
    const { runFaxService, statusName } = (await import(MAIN.href)) as FaxModule
    const printed: string[] = []
    const { jobs, posted, summary, failures } = await runFaxService({
      providers: 4,
      jobs: 5,
      concurrency: 2,
      threads: 4,
      print: (line) => printed.push(line),
    })
    expect(failures).toEqual([])
    expect(jobs.size).toBe(20)
    let handled = 0
    for (const entries of jobs.values()) {
      handled += entries.length
      // In order, none missing: 1, 2, ..., n.
      expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1))
      const names = entries.map((e) => statusName(e.statusId))
      expect(names.slice(0, 2)).toEqual(['FS_INITIALIZING', 'FS_DIALING'])
      expect(['FS_COMPLETED', 'FS_BUSY', 'FS_DISCONNECTED']).toContain(names.at(-1))
      // Pages are reported in order while transmitting.
      const pages = entries.filter((e) => statusName(e.statusId) === 'FS_TRANSMITTING').map((e) => e.line.match(/pages +(\d+)/)![1])
      expect(pages).toEqual(pages.map((_, i) => String(i + 1)))
    }
    expect(handled).toBe(posted)
    expect(Object.values(summary).reduce((a, b) => a + b, 0)).toBe(20)
    expect(printed.at(-2)).toMatch(new RegExp(`^${posted} status changes handled, 0 failed`))
    expect(printed.at(-1)).toBe('service closed')
  })

  it('runs as one command', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(MAIN), '--providers', '2', '--jobs', '2'])
    expect(stdout).toMatch(/^fax service: 2 providers, 4 jobs/)
    expect(stdout).toMatch(/job 0x0100: \d+ status changes/)
    expect(stdout).toMatch(/status changes handled, 0 failed/)
    // The code after `await pool.close()` ran: close() kept the process alive until it resolved.
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('service closed')
  })
})
