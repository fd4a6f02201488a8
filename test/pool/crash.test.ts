// A worker that dies rejects exactly the tasks it held, with WorkerDiedError; it is replaced and
// every other task completes. The deaths: process.exit() in a task, an error thrown from a timer
// of an async task, an unhandled rejection, exceeding resourceLimits, and a death after the task
// untied its thread from the pool's port (by waiting on another port).
import { afterEach, describe, expect, it } from 'vitest'
import { WorkerDiedError } from '@iocp/core'
import { destroyPools, makePool, sharedCells, until } from '../fixtures/harness.js'

afterEach(destroyPools)

async function settle(promises: Array<Promise<unknown>>): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled(promises)
}

describe('worker death', () => {
  it('process.exit() in a task rejects that task only; the others complete', async () => {
    const pool = makePool({ concurrency: 2, threads: 3 })
    const runs = Array.from({ length: 300 }, (_, i) => (i === 150 ? pool.run(7, { name: 'exit' }) : pool.run(i)))
    const outcomes = await settle(runs)
    outcomes.forEach((outcome, i) => {
      if (i !== 150) expect(outcome).toEqual({ status: 'fulfilled', value: 2 * i })
    })
    const died = outcomes[150] as PromiseRejectedResult
    expect(died.status).toBe('rejected')
    expect(died.reason).toBeInstanceOf(WorkerDiedError)
    expect(died.reason).toMatchObject({ code: 'ERR_IOCP_WORKER_DIED', exitCode: 7 })
    expect(died.reason.message).toMatch(/died \(exited with code 7\)/)
    // Replaced: the pool is back to three workers, and runs. One new thread, not two: Piscina
    // makes the pool's first workers (its minThreads) but must not replace them on its own.
    await until(() => pool.stats().threads === 3)
    expect(await pool.run(1)).toBe(2)
    expect(pool.threads.length).toBe(3)
  })

  it('several deaths in a row, each rejecting its own task', async () => {
    const pool = makePool({ concurrency: 2, threads: 2 })
    const runs: Array<Promise<unknown>> = []
    for (let i = 0; i < 60; i++) runs.push(i % 20 === 5 ? pool.run(i, { name: 'exit' }) : pool.run(i))
    const outcomes = await settle(runs)
    outcomes.forEach((outcome, i) => {
      if (i % 20 === 5) expect(outcome).toMatchObject({ status: 'rejected', reason: { exitCode: i } })
      else expect(outcome).toEqual({ status: 'fulfilled', value: 2 * i })
    })
  })

  it('an error thrown later by an async task kills its worker and rejects that task with the cause', async () => {
    const pool = makePool({ concurrency: 1, threads: 2 })
    const error = await pool.run('late boom', { name: 'throwLater' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkerDiedError)
    expect((error as WorkerDiedError).cause).toMatchObject({ message: 'late boom' })
    expect((error as Error).message).toContain('late boom')
    expect(await pool.run(3)).toBe(6)
  })

  it('an unhandled rejection in a task kills its worker and rejects that task', async () => {
    const pool = makePool({ concurrency: 1, threads: 1 })
    const error = await pool.run('nobody caught me', { name: 'rejectUnhandled' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkerDiedError)
    expect((error as WorkerDiedError).cause).toMatchObject({ message: 'nobody caught me' })
    expect(await pool.run(4)).toBe(8)
  })

  it('a worker that exceeds its resourceLimits dies; its task is rejected, others complete', async () => {
    const pool = makePool({ concurrency: 2, threads: 2, resourceLimits: { maxOldGenerationSizeMb: 24 } })
    const runs = [pool.run(1), pool.run(0, { name: 'exhaustMemory' }), pool.run(2), pool.run(3)]
    const outcomes = await settle(runs)
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_IOCP_WORKER_DIED' } })
    expect((outcomes[1] as PromiseRejectedResult).reason.cause).toMatchObject({ code: 'ERR_WORKER_OUT_OF_MEMORY' })
    expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<unknown>).value)).toEqual([2, 4, 6])
    expect(await pool.run(5)).toBe(10)
  })

  it('recovers a task whose thread had untied itself from the port before it died', async () => {
    // The task waited on another port, which ended its held record on the pool's port: the
    // pool still knows the task was running there (its loop's `current` cell).
    const pool = makePool({ concurrency: 1, threads: 1 })
    const error = await pool.run(9, { name: 'untieAndExit' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WorkerDiedError)
    expect(error).toMatchObject({ exitCode: 9 })
    expect(await pool.run(6)).toBe(12)
  })
})

describe('worker death loses nothing and runs nothing twice', () => {
  it('every task runs exactly once and settles once while workers keep dying around it', async () => {
    // Each task counts its runs in its own cell; every 25th exits its worker after counting.
    const count = 400
    const cells = sharedCells(count)
    const pool = makePool({ concurrency: 3, threads: 4, workerData: { cells } })
    const settledTimes = new Array<number>(count).fill(0)
    const runs = Array.from({ length: count }, (_, i) => {
      const run = i % 25 === 7 ? pool.run({ index: i, code: 40 + (i % 7) }, { name: 'countAndExit' }) : pool.run(i, { name: 'count' })
      return run.finally(() => settledTimes[i]!++)
    })
    const outcomes = await Promise.allSettled(runs)
    outcomes.forEach((outcome, i) => {
      if (i % 25 === 7) {
        expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'ERR_IOCP_WORKER_DIED', exitCode: 40 + (i % 7) } })
      } else {
        expect(outcome).toEqual({ status: 'fulfilled', value: i })
      }
    })
    // Run exactly once each (a dead worker's task is never retried), settled exactly once each.
    expect(Array.from(cells)).toEqual(new Array(count).fill(1))
    expect(settledTimes).toEqual(new Array(count).fill(1))
    await until(() => pool.stats().threads === 4)
    expect(await pool.run(1)).toBe(2)
  })
})
