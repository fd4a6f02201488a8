// The caller's own objects misbehaving must not cost a packet, a running count or a promise:
// - getAsync() and PortPool.run() never throw, whatever the signal's getters and methods do, and
//   a getAsync() whose signal refused its listener leaves no waiter behind to swallow a packet;
// - blocking(fn) counts the thread as running again even when reading `then` on fn's result
//   throws;
// - a misspelt option key is refused, naming the key, instead of silently meaning the default.
import { afterEach, describe, expect, it } from 'vitest'
import { CompletionPort, PortPool, type Packet } from '@iocp/core'

const TASKS = new URL('../fixtures/pool-tasks.mjs', import.meta.url)

const ports: CompletionPort[] = []
const pools: PortPool[] = []
function makePort(options?: ConstructorParameters<typeof CompletionPort>[0]): CompletionPort {
  const port = new CompletionPort(options)
  ports.push(port)
  return port
}
afterEach(async () => {
  for (const port of ports.splice(0)) port.close()
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()))
})

/** Thrown by the misbehaving objects below, so a test can tell it apart from the API's errors. */
class Sentinel extends Error {}

/** A real AbortSignal whose `aborted` getter answers `false` `reads` times, then throws. */
function signalWhoseAbortedThrowsAfter(reads: number): AbortSignal {
  const signal = new AbortController().signal
  let left = reads
  Object.defineProperty(signal, 'aborted', {
    get() {
      if (left-- > 0) return false
      throw new Sentinel('aborted getter')
    },
  })
  return signal
}

/** A real AbortSignal whose `addEventListener` throws. */
function signalRefusingListeners(): AbortSignal {
  const signal = new AbortController().signal
  signal.addEventListener = () => {
    throw new Sentinel('addEventListener')
  }
  return signal
}

/** One turn of the event loop: every delivery and microtask queued before it has run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Calls `start` and records whether the promise it returned settled, without awaiting it. */
function track<T>(start: () => Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false
  const promise = start()
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  return { promise, settled: () => settled }
}

describe('getAsync() with a misbehaving signal', () => {
  it('rejects when addEventListener throws, and leaves no waiter to swallow the next packet', async () => {
    const port = makePort()
    // 1. The signal refuses the listener: the call rejects with what it threw.
    await expect(port.getAsync({ signal: signalRefusingListeners() })).rejects.toBeInstanceOf(Sentinel)
    // 2. Nothing stays registered ...
    expect(port.stats().waiting).toBe(0)
    // 3. ... so a post is queued, not handed to the rejected call (which would drop it).
    port.post(7)
    expect(port.stats().queued).toBe(1)
    expect(port.get(0)).toMatchObject({ key: 7 })
  })

  it('rejects, never throws, when the aborted getter throws after validation', async () => {
    const port = makePort()
    let call: Promise<Packet | null> | undefined
    // validateSignal reads `aborted` once; the second read (is it aborted already?) throws.
    expect(() => (call = port.getAsync({ signal: signalWhoseAbortedThrowsAfter(1) }))).not.toThrow()
    await expect(call).rejects.toBeInstanceOf(Sentinel)
    expect(port.stats().waiting).toBe(0)
  })

  it("rejects with what the reason getter threw when the signal aborts (the promise never hangs)", async () => {
    const port = makePort()
    const controller = new AbortController()
    Object.defineProperty(controller.signal, 'reason', {
      get() {
        throw new Sentinel('reason getter')
      },
    })
    const call = track(() => port.getAsync({ signal: controller.signal }))
    expect(port.stats().waiting).toBe(1)
    controller.abort()
    await turn()
    expect(call.settled()).toBe(true)
    await expect(call.promise).rejects.toBeInstanceOf(Sentinel)
    expect(port.stats().waiting).toBe(0)
    // The port still works: a post goes to the queue, nothing is lost.
    port.post(8)
    expect(port.get(0)).toMatchObject({ key: 8 })
  })

  it('delivers the packet when removeEventListener throws', async () => {
    const port = makePort()
    const controller = new AbortController()
    controller.signal.removeEventListener = () => {
      throw new Sentinel('removeEventListener')
    }
    const call = track(() => port.getAsync({ signal: controller.signal }))
    // The waiter is parked; the post hands the packet to it, and the delivery runs on a later
    // turn of this thread's event loop, where it removes the abort listener (which throws).
    port.post(9)
    while (!call.settled() && port.stats().dequeued === 0) await turn()
    await turn()
    expect(call.settled()).toBe(true)
    expect(await call.promise).toMatchObject({ key: 9 })
    expect(port.stats()).toMatchObject({ queued: 0, waiting: 0 })
  })

  it('rejects, never throws, for a signal-like object whose aborted getter throws', async () => {
    const port = makePort()
    const signal = {
      get aborted(): boolean {
        throw new Sentinel('aborted getter')
      },
      addEventListener() {},
      removeEventListener() {},
    } as unknown as AbortSignal
    let call: Promise<Packet | null> | undefined
    expect(() => (call = port.getAsync({ signal }))).not.toThrow()
    await expect(call).rejects.toBeInstanceOf(Sentinel)
    expect(port.stats().waiting).toBe(0)
  })
})

describe('PortPool.run() with a misbehaving signal', () => {
  it('rejects, never throws, when the aborted getter throws after validation', async () => {
    const pool = new PortPool({ filename: TASKS, threads: 1 })
    pools.push(pool)
    let call: Promise<unknown> | undefined
    expect(() => (call = pool.run(1, { signal: signalWhoseAbortedThrowsAfter(1) }))).not.toThrow()
    await expect(call).rejects.toBeInstanceOf(Sentinel)
    // Nothing was admitted, and the pool still runs tasks.
    expect(pool.stats().inFlight).toBe(0)
    expect(await pool.run(21)).toBe(42)
  })

  it('rejects, never throws, when addEventListener throws', async () => {
    const pool = new PortPool({ filename: TASKS, threads: 1 })
    pools.push(pool)
    let call: Promise<unknown> | undefined
    expect(() => (call = pool.run(1, { signal: signalRefusingListeners() }))).not.toThrow()
    await expect(call).rejects.toBeInstanceOf(Sentinel)
    expect(pool.stats().inFlight).toBe(0)
    expect(await pool.run(21)).toBe(42)
  })
})

describe('blocking(fn) when fn returns something odd', () => {
  /** A port on which this thread counts as running (it took a packet). */
  function runningPort(): CompletionPort {
    const port = makePort({ concurrency: 1 })
    port.post(1)
    expect(port.get(0)).not.toBeNull()
    expect(port.stats().running).toBe(1)
    return port
  }

  it('counts the thread as running again when the then getter throws, and throws what it threw', () => {
    const port = runningPort()
    const odd = {
      get then(): never {
        throw new Sentinel('then getter')
      },
    }
    expect(() => port.blocking(() => odd)).toThrow(Sentinel)
    // The count is back: the port cannot release a second thread past concurrency 1.
    expect(port.stats().running).toBe(1)
  })

  it('reads then once: a getter that answers a function, then throws, is a thenable', async () => {
    const port = runningPort()
    let reads = 0
    const odd = {
      get then() {
        if (reads++ > 0) throw new Sentinel('second read')
        return (resolve: (value: string) => void) => resolve('done')
      },
    }
    const result = port.blocking(() => odd as unknown as PromiseLike<string>)
    expect(port.stats().running).toBe(0)
    expect(await result).toBe('done')
    expect(reads).toBe(1)
    expect(port.stats().running).toBe(1)
  })

  it('rejects, and counts the thread again, when the then method throws', async () => {
    const port = runningPort()
    const odd = {
      then() {
        throw new Sentinel('then')
      },
    }
    await expect(port.blocking(() => odd as unknown as PromiseLike<never>)).rejects.toBeInstanceOf(Sentinel)
    expect(port.stats().running).toBe(1)
  })
})

describe('misspelt option keys', () => {
  it('new CompletionPort refuses an unknown key, naming it and the known ones', () => {
    const make = (options: object) => () => makePort(options as never)
    expect(make({ concurency: 2 })).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_VALUE',
        message: expect.stringMatching(/^options\.concurency is not an option of new CompletionPort\(\) \(the options are concurrency, capacity, spinMicroseconds, trackHeld, io\)/),
      }),
    )
    // A key set to undefined is still a misspelling.
    expect(make({ capacty: undefined })).toThrow(/^options\.capacty /)
    // The known keys still work, together.
    expect(makePort({ concurrency: 2, capacity: 4, spinMicroseconds: 0 }).stats()).toMatchObject({ concurrency: 2, capacity: 4 })
  })

  it('getAsync refuses an unknown key as a rejection, and registers nothing', async () => {
    const port = makePort()
    await expect(port.getAsync({ timeout: 5 } as never)).rejects.toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
      message: expect.stringMatching(/^options\.timeout is not an option of getAsync\(\) \(the options are timeoutMs, signal\)/),
    })
    expect(port.stats().waiting).toBe(0)
    // The known keys still work.
    port.post(3)
    expect(await port.getAsync({ timeoutMs: 0, signal: new AbortController().signal })).toMatchObject({ key: 3 })
  })
})
