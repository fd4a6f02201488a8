/**
 * @iocp/core: I/O completion ports for Node.js worker threads.
 *
 * Explicit exports only; each concept lives in its own file.
 */
export { CompletionPort } from './port/completion-port.js'
export type { CompletionPortOptions, GetAsyncOptions, PortStats } from './port/completion-port.js'
export { PacketBatch } from './port/batch.js'
export type { Packet } from './port/packet.js'
export type { PortHandle } from './port/handle.js'
export type { IoBackendName, IoRequest, IoStats } from './port/io.js'
export { allocateIoBuffer } from './port/io.js'
export { IoErrorCode, PortIoError } from './port/io-errors.js'
export { ErrorCode, PortClosedError, PortFullError } from './errors.js'
export { PortPool } from './pool/port-pool.js'
export type { CloseOptions, RunOptions } from './pool/port-pool.js'
export type { TaskName, TaskPayload, TaskResult } from './pool/shared/typed.js'
export type { PortPoolOptions, ResolvedPoolOptions } from './pool/main/options.js'
export type { PoolStats, PoolHistogram, HistogramSummary } from './pool/main/stats.js'
export type { TaskContext, PacketContext } from './pool/worker/task-context.js'
export type { PoolIo } from './pool/worker/pool-io.js'
export {
  AbortError,
  PoolClosedError,
  PoolErrorCode,
  QueueFullError,
  TaskModuleError,
  WorkerDiedError,
} from './pool/shared/errors.js'
