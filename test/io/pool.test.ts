// Overlapped I/O from PortPool handlers: a task issues reads through `ctx.io`, and their
// completions come back through the pool's port as raw packets to `onPacket` (in whichever
// worker the port releases), each exactly once; the pool's reserved keys are refused.
import { closeSync, openSync } from 'node:fs'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PortPool } from '@iocp/core'
import { expectedByte, makeTestFile } from '../fixtures/io-harness.js'

const TASKS = new URL('../fixtures/io-pool-tasks.mjs', import.meta.url)
const file = makeTestFile(64 * 1024)
const open: Array<{ pool: PortPool; reply: CompletionPort }> = []
afterAll(() => file.cleanup())
afterEach(async () => {
  for (const { pool, reply } of open.splice(0)) {
    await pool.destroy()
    reply.close()
  }
})

const BLOCK = 512
const COUNT = 100

function start(buffer = new SharedArrayBuffer(BLOCK * COUNT)): { pool: PortPool; reply: CompletionPort } {
  const reply = new CompletionPort({ concurrency: 1 })
  const pool = new PortPool({ filename: TASKS, concurrency: 2, threads: 2, workerData: { reply: reply.handle, buffer } })
  const made = { pool, reply }
  open.push(made)
  return made
}

describe('overlapped I/O from PortPool handlers', () => {
  it("a task's reads complete through the pool's port to onPacket, each once", async () => {
    const buffer = new SharedArrayBuffer(BLOCK * COUNT)
    const { pool, reply } = start(buffer)
    const fd = openSync(file.path, 'r')
    const block = BLOCK
    const count = COUNT
    expect(await pool.run({ fd, key: 77, count, block })).toBe(count)
    const seen = new Array<number>(count).fill(0)
    for (let i = 0; i < count; i++) {
      const packet = (await reply.getAsync())!
      expect(packet.key).toBe(77)
      expect(packet.bytes).toBe(block)
      seen[packet.overlapped as number]! += 1
    }
    expect(seen.every((n) => n === 1)).toBe(true)
    const bytes = new Uint8Array(buffer)
    for (let i = 0; i < bytes.length; i += 97) expect(bytes[i]).toBe(expectedByte(i))
    closeSync(fd)
  })

  it("refuses the pool's reserved keys", async () => {
    const { pool } = start()
    const fd = openSync(file.path, 'r')
    await expect(pool.run({ fd }, { name: 'reservedKey' })).rejects.toThrow(RangeError)
    closeSync(fd)
  })
})
