// FAX_DEV_STATUS, the record a Windows fax service provider reports its job status in
// (faxdev.h), as the bytes of a completion packet's payload.
//
// In the Fax Service Provider API, FaxDevStartJob hands the provider a completion port and a
// completion key per job; whenever a job's status changes, the provider allocates a
// FAX_DEV_STATUS on the heap and posts it with PostQueuedCompletionStatus(port, size, key,
// &status): the record's pointer is the OVERLAPPED argument, and the fax service, which owns it
// from then on, frees it after reading. Here the record is the packet's `data` (copied once at
// post, owned by exactly one consumer), `bytes` is its size, `key` is the job's completion key
// and `overlapped` is the job's status sequence number.
//
// Layout (little-endian):
//   u32 SizeOfStruct   u32 StatusId   u32 StringId   u32 PageCount   u32 ErrorCode
//   then CSI, CallerId, RoutingInfo: each a u32 length in UTF-16 code units, then UTF-16LE text.

/** Status ids of faxdev.h. */
export const FS = Object.freeze({
  INITIALIZING: 0x20000000,
  DIALING: 0x20000001,
  TRANSMITTING: 0x20000002,
  RECEIVING: 0x20000004,
  COMPLETED: 0x20000008,
  HANDLED: 0x20000010,
  LINE_UNAVAILABLE: 0x20000020,
  BUSY: 0x20000040,
  NO_ANSWER: 0x20000080,
  BAD_ADDRESS: 0x20000100,
  NO_DIAL_TONE: 0x20000200,
  DISCONNECTED: 0x20000400,
  FATAL_ERROR: 0x20000800,
  ANSWERED: 0x20800000,
})

const NAMES = new Map(Object.entries(FS).map(([name, id]) => [id, `FS_${name}`]))

/** The name of a status id, e.g. 'FS_DIALING'. */
export function statusName(statusId) {
  return NAMES.get(statusId) ?? `0x${statusId.toString(16)}`
}

/** Whether a job ends with this status. */
export function isFinal(statusId) {
  return statusId !== FS.INITIALIZING && statusId !== FS.DIALING && statusId !== FS.TRANSMITTING &&
    statusId !== FS.RECEIVING && statusId !== FS.ANSWERED
}

const HEADER = 20

/**
 * Encodes a status record.
 * @param {{ statusId: number, stringId: number, pageCount: number, errorCode: number, csi: string, callerId: string, routingInfo: string }} status
 * @returns {Uint8Array}
 */
export function encodeStatus(status) {
  const strings = [status.csi, status.callerId, status.routingInfo]
  const size = HEADER + strings.reduce((n, s) => n + 4 + 2 * s.length, 0)
  const bytes = new Uint8Array(size)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, size, true)
  view.setUint32(4, status.statusId, true)
  view.setUint32(8, status.stringId, true)
  view.setUint32(12, status.pageCount, true)
  view.setUint32(16, status.errorCode, true)
  let at = HEADER
  for (const s of strings) {
    view.setUint32(at, s.length, true)
    at += 4
    for (let i = 0; i < s.length; i++, at += 2) view.setUint16(at, s.charCodeAt(i), true)
  }
  return bytes
}

/**
 * Decodes a status record.
 * @param {Uint8Array} bytes
 */
export function decodeStatus(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const size = view.getUint32(0, true)
  if (size !== bytes.byteLength) throw new RangeError(`FAX_DEV_STATUS of ${bytes.byteLength} bytes says it has ${size}`)
  const strings = []
  let at = HEADER
  for (let n = 0; n < 3; n++) {
    const length = view.getUint32(at, true)
    at += 4
    let s = ''
    for (let i = 0; i < length; i++, at += 2) s += String.fromCharCode(view.getUint16(at, true))
    strings.push(s)
  }
  return {
    statusId: view.getUint32(4, true),
    stringId: view.getUint32(8, true),
    pageCount: view.getUint32(12, true),
    errorCode: view.getUint32(16, true),
    csi: strings[0],
    callerId: strings[1],
    routingInfo: strings[2],
  }
}
