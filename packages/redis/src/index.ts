/**
 * @iocp/redis: the completion port and PortPool beyond one machine, over Redis Streams
 * consumer groups. Explicit exports only; see docs/scale-out.md.
 */
export { RemotePool } from './remote-pool.js'
export type { RemotePoolOptions, RemoteRunOptions, RemotePoolStats } from './remote-pool.js'
export { PoolForwarder } from './pool-forwarder.js'
export type { PoolForwarderOptions, PoolForwarderStats } from './pool-forwarder.js'
export type { RedisTarget } from './connection.js'
export {
  DeadLetterError,
  RedisErrorCode,
  RedisUnavailableError,
  RemoteClosedError,
  RemoteTaskError,
} from './errors.js'
export { RemotePort } from './remote-port.js'
export type { RemotePortOptions } from './remote-port.js'
export { Forwarder } from './forwarder.js'
export type { ForwarderOptions, ForwarderStats } from './forwarder.js'
export { ForwardedPort } from './forwarded-port.js'
export type { ForwardedHandle } from './forwarded-port.js'
