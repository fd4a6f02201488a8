// What the copy's main thread and its workers share (see copier.mjs for the protocol).

/** Completion keys: the source file's, the destination's, and the workers' stop packet. */
export const READ = 1
export const WRITE = 2
export const STOP = 3

/** The shared state: Int32 cells, then one BigInt64 cell (bytes written so far) at byte 16. */
export const NEXT = 0 // next unclaimed block
export const RETIRED = 1 // slots that found no block left
export const ERROR = 2 // 0, or 1 + the index of the first failure's code in ERROR_CODES
export const SHARED_BYTES = 24
export const COPIED_BYTE_OFFSET = 16

/** The views of the shared state. */
export function sharedViews(shared) {
  return { cells: new Int32Array(shared, 0, 4), copied: new BigInt64Array(shared, COPIED_BYTE_OFFSET, 1) }
}

/** Codes a copy can fail with, by index (a failure is recorded as one Int32). */
export const ERROR_CODES = ['EFILECHANGED', 'EIO', 'ENOSPC', 'EBADF', 'EFBIG', 'EDQUOT', 'EINVAL', 'ECANCELED']

export function errorIndex(code) {
  const i = ERROR_CODES.indexOf(code)
  return 1 + (i === -1 ? ERROR_CODES.length : i)
}

export function errorCode(index) {
  return ERROR_CODES[index - 1] ?? 'EUNKNOWN'
}

/** Index of slot s's [offset, remaining] pair in the slots' Float64Array. */
export function slotOffset(s) {
  return s * 2
}
