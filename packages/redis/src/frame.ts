/**
 * The binary frames a {@link RemotePool} task and its reply travel in.
 *
 * Why frames and not one stream field per attribute: every field is a bulk string that ioredis
 * encodes, Redis stores, and the reader's RESP decoder turns into a Buffer of its own. With eight
 * fields per task and three per reply, that parsing and allocation was the largest cost of a tiny
 * task on both sides (docs/scale-out.md, "How a task travels, and what it costs"). A task is now
 * one field of a stream entry, and the replies that one settle call writes to one client are
 * concatenated into one field of one reply entry.
 *
 * Task frame (the value of field `x` of a task entry), little-endian:
 *
 * | bytes | what |
 * | --- | --- |
 * | 1 | version, {@link TASK_VERSION} |
 * | 1 | flags: bit 0 = the caller passed a signal (the forwarder checks for its cancellation) |
 * | 2 | maxAttempts |
 * | 2 | handler failures in earlier deliveries (a requeued task carries its count) |
 * | 8 | the task's sequence number at its client (a float64 holding an integer) |
 * | 4 + n | the client's reply stream key, UTF-8, length first |
 * | 4 + n | the task function's name ('' = the pool's default) |
 * | 4 + n | the idempotency key ('' = none) |
 * | rest | the payload, as {@link encode} made it |
 *
 * Reply frame (several back to back in field `b` of a reply entry):
 *
 * | bytes | what |
 * | --- | --- |
 * | 4 | the length of the rest of this frame |
 * | 1 | status: {@link ReplyCode} |
 * | 2 | attempts made (a dead-lettered task) |
 * | 8 | the task's sequence number |
 * | rest | the value: the result or an error record, as {@link encode} made it |
 */

/** The field of a task entry that holds its frame. */
export const TASK_FIELD = 'x'
/** The field of a reply entry that holds its frames. */
export const REPLY_FIELD = 'b'
/** The task frame's version byte. */
export const TASK_VERSION = 1

/** How a task ended, in a reply frame. */
export const ReplyCode = { ok: 0, error: 1, dead: 2, cancelled: 3 } as const
export type ReplyCode = (typeof ReplyCode)[keyof typeof ReplyCode]

const FLAG_CANCELLABLE = 1
const TASK_FIXED = 14
const REPLY_HEAD = 15

/** A task as its frame carries it. Strings stay bytes until someone needs them. */
export interface TaskFrame {
  readonly seq: number
  /** The reply stream key. */
  readonly reply: Buffer
  readonly name: string
  readonly idem: string
  readonly failures: number
  readonly maxAttempts: number
  readonly cancellable: boolean
  /** The encoded payload (a view into the frame). */
  readonly payload: Buffer
}

/** What {@link taskFrame} writes: the fields a frame carries. */
export type TaskFrameInput = TaskFrame

/** Builds a task frame. */
export function taskFrame(t: TaskFrameInput): Buffer {
  const nameLen = Buffer.byteLength(t.name)
  const idemLen = Buffer.byteLength(t.idem)
  const size = TASK_FIXED + 12 + t.reply.length + nameLen + idemLen + t.payload.length
  const b = Buffer.allocUnsafe(size)
  b[0] = TASK_VERSION
  b[1] = t.cancellable ? FLAG_CANCELLABLE : 0
  b.writeUInt16LE(t.maxAttempts, 2)
  b.writeUInt16LE(t.failures, 4)
  b.writeDoubleLE(t.seq, 6)
  let at = TASK_FIXED
  b.writeUInt32LE(t.reply.length, at)
  t.reply.copy(b, at + 4)
  at += 4 + t.reply.length
  b.writeUInt32LE(nameLen, at)
  if (nameLen > 0) b.write(t.name, at + 4, 'utf8')
  at += 4 + nameLen
  b.writeUInt32LE(idemLen, at)
  if (idemLen > 0) b.write(t.idem, at + 4, 'utf8')
  at += 4 + idemLen
  t.payload.copy(b, at)
  return b
}

/** The same task with another failure count (a requeue). */
export function withFailures(frame: Buffer, failures: number): Buffer {
  const b = Buffer.from(frame)
  b.writeUInt16LE(failures, 4)
  return b
}

/**
 * Reads a task frame.
 * @throws {RangeError} the bytes are not a task frame of this version (a foreign or corrupt entry).
 */
export function readTaskFrame(b: Buffer | undefined): TaskFrame {
  if (b === undefined || b.length < TASK_FIXED + 12 || b[0] !== TASK_VERSION) {
    throw new RangeError(`not a task frame of version ${TASK_VERSION}`)
  }
  let at = TASK_FIXED
  // Each field: its [start, end) in b, checked; views and strings are made only when not empty.
  const field = (): number => {
    if (at + 4 > b.length) throw new RangeError('a task frame ends inside a field')
    const start = at + 4
    at = start + b.readUInt32LE(at)
    if (at > b.length) throw new RangeError('a task frame ends inside a field')
    return start
  }
  const replyAt = field()
  const reply = b.subarray(replyAt, at)
  const nameAt = field()
  const name = at === nameAt ? '' : b.toString('utf8', nameAt, at)
  const idemAt = field()
  const idem = at === idemAt ? '' : b.toString('utf8', idemAt, at)
  return {
    seq: b.readDoubleLE(6),
    reply,
    name,
    idem,
    failures: b.readUInt16LE(4),
    maxAttempts: b.readUInt16LE(2),
    cancellable: (b[1]! & FLAG_CANCELLABLE) !== 0,
    payload: b.subarray(at),
  }
}

/** Builds one reply frame. */
export function replyFrame(seq: number, code: ReplyCode, value: Buffer | undefined, attempts = 0): Buffer {
  const n = value?.length ?? 0
  const b = Buffer.allocUnsafe(REPLY_HEAD + n)
  b.writeUInt32LE(REPLY_HEAD - 4 + n, 0)
  b[4] = code
  b.writeUInt16LE(attempts, 5)
  b.writeDoubleLE(seq, 7)
  if (n > 0) value!.copy(b, REPLY_HEAD)
  return b
}

/** One reply, as {@link readReplyFrames} hands it over. */
export interface Reply {
  readonly seq: number
  readonly code: number
  readonly attempts: number
  /** A view into the entry's bytes; empty = `undefined`. */
  readonly value: Buffer
}

/**
 * Calls `each` for every reply frame in `b` (the frames of one reply entry, back to back).
 * @throws {RangeError} the bytes end inside a frame.
 */
export function readReplyFrames(b: Buffer, each: (reply: Reply) => void): void {
  let at = 0
  while (at < b.length) {
    if (at + REPLY_HEAD > b.length) throw new RangeError('a reply entry ends inside a frame')
    const end = at + 4 + b.readUInt32LE(at)
    if (end > b.length || end < at + REPLY_HEAD) throw new RangeError('a reply entry ends inside a frame')
    each({ seq: b.readDoubleLE(at + 7), code: b[at + 4]!, attempts: b.readUInt16LE(at + 5), value: b.subarray(at + REPLY_HEAD, end) })
    at = end
  }
}
