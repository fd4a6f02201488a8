// Two copies of @iocp/core in one thread over one @iocp/native share the addon's per-thread
// state (port/thread-state.ts). Before they did, the second copy's first port took the addon's
// scratch and delivery callback from the first, and the first copy's pending getAsync never
// settled. Each case runs in a child process, so that a hang fails by its timeout.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('../fixtures/two-copies.cjs', import.meta.url))
const tasks = fileURLToPath(new URL('../fixtures/pool-tasks.cjs', import.meta.url))

function run(...args: string[]): string[] {
  const child = spawnSync(process.execPath, [fixture, ...args], { encoding: 'utf8', timeout: 60_000 })
  expect(child.signal, child.stderr).toBeNull()
  expect(child.status, child.stdout + child.stderr).toBe(0)
  return child.stdout.trim().split('\n')
}

describe('two copies of @iocp/core in one thread', () => {
  it('both copies post, get and getAsync, and each waiter gets its own packet', () => {
    expect(run('ports')).toEqual([
      'b get 2',
      'b getMany 300 true',
      'a getAsync 1 10 11 7',
      'a get 5',
      'b getAsync 6',
      'done',
    ])
  })

  it("pools of both copies, one after another, each settle their first task", () => {
    expect(run('pools', tasks)).toEqual([
      ...[0, 1, 2].flatMap((round) => [`a pool ${round * 3}`, `b pool ${round * 3}`]),
      'done',
    ])
  })

  it('a copy that speaks another thread-state protocol gets a clear error, naming what to do', () => {
    const [line, done] = run('incompatible')
    expect(line).toMatch(/^ERR_IOCP_INCOMPATIBLE_COPY: Another copy of @iocp\/core .* Install a single version of @iocp\/core/)
    expect(done).toBe('done')
  })
})
