// The scale-out example (examples/scale-out) runs end to end: a private redis-server, two consumer
// processes, one producer; every result comes back to its own task, and nothing is left running.
import { spawn } from 'node:child_process'
import { expect, it } from 'vitest'

it('runs the scale-out example: two consumer processes share the tasks of one producer', async () => {
  const main = new URL('../../examples/scale-out/main.mjs', import.meta.url).pathname
  const child = spawn(process.execPath, [main, '--tasks', '300'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, REDIS_URL: '' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  expect(out).toContain('every result is its own task')
  expect(out.match(/^consumer \d+: ran \d+ tasks/gm)).toHaveLength(2)
  expect(code).toBe(0)
})
