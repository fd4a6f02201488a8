/**
 * A task's outcome as its result packet carries it (pool/shared/codec.ts), for the loop
 * (pool/worker/loop.ts) and for a boot task (pool/worker/boot-task.ts) alike.
 */
import type { MessagePort } from 'node:worker_threads'
import { PoolErrors } from '../shared/errors.js'
import { ENC_ERROR, ENC_SIDE, ENC_SKIPPED, encodeError, encodeValue, resultKey, unwrapMovable, type Encoded } from '../shared/codec.js'
import type { SideResult } from '../shared/protocol.js'

const ERROR_KEY = resultKey(ENC_ERROR, 0)
/** The key of a task's skip notice: it was aborted before it ran (its slot is the main thread's again). */
export const SKIPPED_KEY = resultKey(ENC_SKIPPED, 0)
const SIDE_KEY = resultKey(ENC_SIDE, 0)

/** The words of a result packet: its key (encoding and high bits), bytes and payload. */
export interface Answer {
  key: number
  bytes: number
  data: Uint8Array | undefined
}

/**
 * The result packet of task `id`: its value (`ok`) or what it threw. A value that `v8.serialize`
 * refuses (a SharedArrayBuffer, say) is sent by postMessage on `side`, which shares what it can,
 * before the packet that tells the main thread to look for it; one that neither can carry fails
 * the task with the clone error.
 */
export function answerOf(id: number, ok: boolean, value: unknown, out: Encoded, side: MessagePort): Answer {
  if (!ok) return { key: ERROR_KEY, bytes: 0, data: encodeError(value) }
  const result = unwrapMovable(value)
  try {
    const enc = encodeValue(result, out)
    return { key: resultKey(enc, out.hi), bytes: out.lo, data: out.data }
  } catch {
    try {
      side.postMessage({ id, result } satisfies SideResult)
      return { key: SIDE_KEY, bytes: 0, data: undefined }
    } catch (error) {
      return { key: ERROR_KEY, bytes: 0, data: encodeError(PoolErrors.notClonable("the task's result", error)) }
    }
  }
}

/**
 * Like Piscina, a task's answer waits for the console output the task wrote to reach the main
 * thread, so that it appears before the task's promise settles: whether there is any to wait for.
 */
export function stdioPending(): boolean {
  return process.stdout.writableLength > 0 || process.stderr.writableLength > 0
}

/** Resolves once the console output written so far has been handed on. */
export async function flushStdio(): Promise<void> {
  if (process.stdout.writableLength > 0) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
  if (process.stderr.writableLength > 0) await new Promise<void>((resolve) => process.stderr.write('', () => resolve()))
}
