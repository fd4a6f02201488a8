/**
 * The pure-JS peer: a bounded multi-producer multi-consumer queue of packets in
 * `SharedArrayBuffer`s, the queue a user would write instead of a completion port. Consumers
 * (and producers, when it is full) park in `Atomics.wait`. By default nothing spins; a consumer
 * opened with `spinMicroseconds` polls the queue that long before it parks, as a completion
 * port's waiter does by default (for like-for-like comparisons).
 *
 * The algorithm is Dmitry Vyukov's bounded MPMC queue: every cell carries a sequence number that
 * says whose turn it is (a producer's at lap `pos`: `seq == pos`; a consumer's: `seq == pos + 1`),
 * and producers and consumers claim positions with a compare-and-swap on their own counter. A
 * batched push or pop claims a run of free or ready cells with one compare-and-swap. Positions are int32 and
 * wrap; every comparison is a wrapped difference, valid while the capacity is below 2^30.
 *
 * Parking is an event count per direction: a consumer that finds the queue empty reads the
 * `NOT_EMPTY` epoch, registers in `SLEEPING_CONSUMERS`, checks again, and only then waits for
 * the epoch to change; a producer that pushed bumps the epoch and notifies one waiter only when
 * someone is registered. All Atomics operations are sequentially consistent, so either the
 * consumer's second check sees the packet or the producer sees the registration.
 *
 * A packet is three doubles (key, bytes, overlapped), the same information a port packet carries.
 */

/** Int32 indexes in the control array, each on its own 64-byte line. */
const ENQUEUE = 0
const DEQUEUE = 16
const SLEEPING_CONSUMERS = 32
const NOT_EMPTY = 48
const SLEEPING_PRODUCERS = 64
const NOT_FULL = 80
const CONTROL_WORDS = 96

/** Doubles per packet. */
const FIELDS = 3

/** The buffers of a queue: structured-clonable, to open the same queue in another thread. */
export interface SabQueueBuffers {
  readonly control: SharedArrayBuffer
  readonly sequences: SharedArrayBuffer
  readonly cells: SharedArrayBuffer
}

export class SabQueue {
  /** Cells in the ring (a power of two). */
  readonly capacity: number
  /** Send these to another thread and open them there with `new SabQueue(buffers)`. */
  readonly buffers: SabQueueBuffers
  readonly #control: Int32Array
  readonly #sequences: Int32Array
  readonly #cells: Float64Array
  readonly #mask: number
  /** How long (ms) a consumer polls before it parks; 0: it parks at once. */
  readonly #spinMs: number

  /**
   * @param init - the capacity of a new queue (rounded up to a power of two, at most 2^29),
   *   or the {@link SabQueue.buffers} of an existing one.
   * @param options.spinMicroseconds - how long this thread, as a consumer, polls an empty queue
   *   before it parks in `Atomics.wait` (default 0: it parks at once).
   */
  constructor(init: number | SabQueueBuffers, options: { spinMicroseconds?: number } = {}) {
    this.#spinMs = (options.spinMicroseconds ?? 0) / 1000
    if (typeof init === 'number') {
      let capacity = 2
      while (capacity < init) capacity *= 2
      if (capacity > 2 ** 29) throw new RangeError(`capacity must be at most 2^29, got ${init}`)
      this.buffers = {
        control: new SharedArrayBuffer(CONTROL_WORDS * 4),
        sequences: new SharedArrayBuffer(capacity * 4),
        cells: new SharedArrayBuffer(capacity * FIELDS * 8),
      }
      const sequences = new Int32Array(this.buffers.sequences)
      for (let i = 0; i < capacity; i++) sequences[i] = i
    } else {
      this.buffers = init
    }
    this.#control = new Int32Array(this.buffers.control)
    this.#sequences = new Int32Array(this.buffers.sequences)
    this.#cells = new Float64Array(this.buffers.cells)
    this.capacity = this.#sequences.length
    this.#mask = this.capacity - 1
  }

  /** Adds a packet if there is room; never blocks. */
  tryPush(key: number, bytes: number, overlapped: number): boolean {
    const control = this.#control
    const sequences = this.#sequences
    let pos = Atomics.load(control, ENQUEUE)
    for (;;) {
      const cell = pos & this.#mask
      const dif = (Atomics.load(sequences, cell) - pos) | 0
      if (dif === 0) {
        const seen = Atomics.compareExchange(control, ENQUEUE, pos, (pos + 1) | 0)
        if (seen === pos) {
          const at = cell * FIELDS
          this.#cells[at] = key
          this.#cells[at + 1] = bytes
          this.#cells[at + 2] = overlapped
          Atomics.store(sequences, cell, (pos + 1) | 0) // publishes the cell to consumers
          this.#wakeConsumer()
          return true
        }
        pos = seen
      } else if (dif < 0) {
        return false // full: the cell still holds the previous lap's packet
      } else {
        pos = Atomics.load(control, ENQUEUE)
      }
    }
  }

  /** Adds a packet, parking this thread in `Atomics.wait` while the queue is full. */
  push(key: number, bytes: number, overlapped: number): void {
    if (this.tryPush(key, bytes, overlapped)) return
    const control = this.#control
    for (;;) {
      const epoch = Atomics.load(control, NOT_FULL)
      Atomics.add(control, SLEEPING_PRODUCERS, 1)
      if (this.tryPush(key, bytes, overlapped)) {
        Atomics.sub(control, SLEEPING_PRODUCERS, 1)
        return
      }
      Atomics.wait(control, NOT_FULL, epoch)
      Atomics.sub(control, SLEEPING_PRODUCERS, 1)
      if (this.tryPush(key, bytes, overlapped)) return
    }
  }

  /**
   * Adds up to `count` packets from `from` (three doubles each) with one compare-and-swap, as
   * many as there is room for; never blocks.
   * @returns how many were added (0 if the queue is full).
   */
  tryPushMany(from: Float64Array, count: number): number {
    const control = this.#control
    const sequences = this.#sequences
    const mask = this.#mask
    let pos = Atomics.load(control, ENQUEUE)
    for (;;) {
      // Count the run of cells, from pos, that are free for this lap.
      let free = 0
      let dif = 0
      while (free < count) {
        const at = (pos + free) | 0
        dif = (Atomics.load(sequences, at & mask) - at) | 0
        if (dif !== 0) break
        free++
      }
      if (free === 0) {
        if (dif < 0) return 0 // full
        pos = Atomics.load(control, ENQUEUE) // another producer moved on
        continue
      }
      const seen = Atomics.compareExchange(control, ENQUEUE, pos, (pos + free) | 0)
      if (seen !== pos) {
        pos = seen
        continue
      }
      const cells = this.#cells
      for (let i = 0; i < free; i++) {
        const at = (pos + i) | 0
        const cell = at & mask
        const to = cell * FIELDS
        const src = i * FIELDS
        cells[to] = from[src]!
        cells[to + 1] = from[src + 1]!
        cells[to + 2] = from[src + 2]!
        Atomics.store(sequences, cell, (at + 1) | 0) // publishes the cell to consumers
      }
      this.#wakeConsumer(free)
      return free
    }
  }

  /** Adds `count` packets from `from`, parking this thread while the queue is full. */
  pushMany(from: Float64Array, count: number): void {
    const control = this.#control
    let done = this.tryPushMany(from, count)
    while (done < count) {
      const rest = from.subarray(done * FIELDS)
      const epoch = Atomics.load(control, NOT_FULL)
      Atomics.add(control, SLEEPING_PRODUCERS, 1)
      const pushed = this.tryPushMany(rest, count - done)
      if (pushed === 0) Atomics.wait(control, NOT_FULL, epoch)
      Atomics.sub(control, SLEEPING_PRODUCERS, 1)
      done += pushed
    }
  }

  /**
   * Takes up to `max` packets into `out` (three doubles each) if any are ready; never blocks.
   * @returns how many were taken (0 if the queue is empty).
   */
  tryPopMany(out: Float64Array, max: number): number {
    const control = this.#control
    const sequences = this.#sequences
    const mask = this.#mask
    let pos = Atomics.load(control, DEQUEUE)
    for (;;) {
      // Count the run of cells, from pos, whose packets are ready for this lap.
      let ready = 0
      let dif = 0
      while (ready < max) {
        const at = (pos + ready) | 0
        dif = (Atomics.load(sequences, at & mask) - ((at + 1) | 0)) | 0
        if (dif !== 0) break
        ready++
      }
      if (ready === 0) {
        if (dif < 0) return 0 // empty
        pos = Atomics.load(control, DEQUEUE) // another consumer moved on
        continue
      }
      const seen = Atomics.compareExchange(control, DEQUEUE, pos, (pos + ready) | 0)
      if (seen !== pos) {
        pos = seen
        continue
      }
      const cells = this.#cells
      for (let i = 0; i < ready; i++) {
        const at = (pos + i) | 0
        const cell = at & mask
        const from = cell * FIELDS
        const to = i * FIELDS
        out[to] = cells[from]!
        out[to + 1] = cells[from + 1]!
        out[to + 2] = cells[from + 2]!
        Atomics.store(sequences, cell, (at + this.capacity) | 0) // hands the cell to the next lap
      }
      this.#wakeProducer()
      return ready
    }
  }

  /**
   * Takes at least one and up to `max` packets into `out`, parking this thread in
   * `Atomics.wait` while the queue is empty.
   * @returns how many were taken (>= 1).
   */
  popMany(out: Float64Array, max: number): number {
    let taken = this.tryPopMany(out, max)
    if (taken > 0) return taken
    if (this.#spinMs > 0) {
      const until = performance.now() + this.#spinMs
      do {
        taken = this.tryPopMany(out, max)
        if (taken > 0) return taken
      } while (performance.now() < until)
    }
    const control = this.#control
    for (;;) {
      const epoch = Atomics.load(control, NOT_EMPTY)
      Atomics.add(control, SLEEPING_CONSUMERS, 1)
      taken = this.tryPopMany(out, max)
      if (taken > 0) {
        Atomics.sub(control, SLEEPING_CONSUMERS, 1)
        return taken
      }
      Atomics.wait(control, NOT_EMPTY, epoch)
      Atomics.sub(control, SLEEPING_CONSUMERS, 1)
      taken = this.tryPopMany(out, max)
      if (taken > 0) return taken
    }
  }

  /** Takes one packet into `out[0..2]`, parking while the queue is empty. */
  pop(out: Float64Array): void {
    this.popMany(out, 1)
  }

  /** Packets in the queue (a snapshot). */
  get size(): number {
    return (Atomics.load(this.#control, ENQUEUE) - Atomics.load(this.#control, DEQUEUE)) | 0
  }

  /** Wakes up to `count` parked consumers, if any are parked. */
  #wakeConsumer(count = 1): void {
    const control = this.#control
    if (Atomics.load(control, SLEEPING_CONSUMERS) > 0) {
      Atomics.add(control, NOT_EMPTY, 1)
      Atomics.notify(control, NOT_EMPTY, count)
    }
  }

  #wakeProducer(): void {
    const control = this.#control
    if (Atomics.load(control, SLEEPING_PRODUCERS) > 0) {
      Atomics.add(control, NOT_FULL, 1)
      Atomics.notify(control, NOT_FULL, 1)
    }
  }
}

/**
 * The SAB peer's producer, shared by main and the producer workers: keys `first`,
 * `first + step`, ... below `n`, one `push()` per packet, or, when `buffer` is given (3 doubles
 * per packet), `pushMany()` of up to `buffer.length / 3` at a time.
 */
export function pushKeys(queue: SabQueue, first: number, step: number, n: number, buffer?: Float64Array): void {
  if (buffer === undefined) {
    for (let key = first; key < n; key += step) queue.push(key, 0, 0)
    return
  }
  const room = buffer.length / 3
  let fill = 0
  for (let key = first; key < n; key += step) {
    buffer[fill * 3] = key
    buffer[fill * 3 + 1] = 0
    buffer[fill * 3 + 2] = 0
    if (++fill === room) {
      queue.pushMany(buffer, fill)
      fill = 0
    }
  }
  if (fill > 0) queue.pushMany(buffer, fill)
}
