/**
 * @iocp/core: I/O completion ports for Node.js worker threads.
 *
 * Explicit exports only; each concept lives in its own file.
 */
export { CompletionPort } from './completion-port.js'
export type { CompletionPortOptions, GetAsyncOptions, PortStats } from './completion-port.js'
export { PacketBatch } from './batch.js'
export type { Packet } from './packet.js'
export type { PortHandle } from './handle.js'
export { ErrorCode, PortClosedError, PortFullError } from './errors.js'
export { PortPool } from './pool.js'
export type { RunOptions } from './pool.js'
export type { PortPoolOptions, ResolvedPoolOptions } from './pool-options.js'
export type { PoolStats, PoolHistogram, HistogramSummary } from './pool-stats.js'
export type { TaskContext, PacketContext } from './task-context.js'
export {
  AbortError,
  PoolClosedError,
  PoolErrorCode,
  QueueFullError,
  TaskModuleError,
  WorkerDiedError,
} from './pool-errors.js'
