/**
 * Overlapped file I/O from PortPool handlers: `ctx.io` is the pool's port's I/O methods
 * (docs/io.md), so a handler associates a file and issues reads whose completions come back as
 * raw packets to some worker's `onPacket`, dequeued under the pool's FIFO, LIFO and concurrency
 * rules like every packet of the pool. Keys must be below 2^52 (the pool's task keys start there).
 */
import type { CompletionPort } from '../../port/completion-port.js'
import { TASK_BASE } from '../shared/codec.js'
import { PoolErrors } from '../shared/errors.js'

/** The I/O methods of the pool's port, as `ctx.io` gives them to handlers. */
export type PoolIo = Pick<CompletionPort, 'associate' | 'dissociate' | 'read' | 'write' | 'fsync' | 'submit' | 'cancel'>

const views = new WeakMap<PoolIo, PoolIo>()

/** `port`'s I/O methods, with associate refusing the pool's reserved keys (one object per port). */
export function poolIo(port: PoolIo): PoolIo {
  let io = views.get(port)
  if (io === undefined) {
    io = {
      associate(fd, key) {
        if (typeof key === 'number' && key >= TASK_BASE) throw PoolErrors.reservedKey(key)
        port.associate(fd, key)
      },
      dissociate: (fd) => port.dissociate(fd),
      read: (fd, buffer, position, overlapped, length) => port.read(fd, buffer, position, overlapped, length),
      write: (fd, buffer, position, overlapped, length) => port.write(fd, buffer, position, overlapped, length),
      fsync: (fd, overlapped) => port.fsync(fd, overlapped),
      submit: (requests) => port.submit(requests),
      cancel: (fd, overlapped) => port.cancel(fd, overlapped),
    }
    views.set(port, io)
  }
  return io
}
