/**
 * The errors of overlapped file I/O, made in one place (the port's own errors live in
 * ../errors.ts). Bad arguments use Node's codes through {@link Errors}; the conditions below have
 * stable codes of their own.
 */
import { constants } from 'node:os'

/** Stable codes of the I/O conditions, for `err.code === IoErrorCode.NotAssociated` checks. */
export const IoErrorCode = {
  /** The fd is not associated with this port: call `port.associate(fd, key)` first. */
  NotAssociated: 'ERR_IOCP_NOT_ASSOCIATED',
  /** The fd is already associated with this port (IOCP refuses a second association too). */
  AlreadyAssociated: 'ERR_IOCP_ALREADY_ASSOCIATED',
  /** The fd is not open (Node's `EBADF`). */
  BadFd: 'EBADF',
  /** The fd is open but is not a regular file or a block device. */
  NotAFile: 'ERR_IOCP_NOT_A_FILE',
  /** The backend asked for (`options.io`, `IOCP_IO_BACKEND`) cannot run here. */
  BackendUnavailable: 'ERR_IOCP_IO_UNAVAILABLE',
  /** The port has a `capacity`: an I/O completion must never be refused, so I/O needs an unbounded port. */
  PortHasCapacity: 'ERR_IOCP_IO_CAPACITY',
} as const

/** One of the values of {@link IoErrorCode}. */
export type IoErrorCode = (typeof IoErrorCode)[keyof typeof IoErrorCode]

/** A refused I/O call: nothing was queued. `code` is one of {@link IoErrorCode}. */
export class PortIoError extends Error {
  /** One of {@link IoErrorCode}. */
  readonly code: IoErrorCode
  override readonly name = 'PortIoError'
  /** The file descriptor the call named. */
  readonly fd: number

  constructor(message: string, code: IoErrorCode, fd: number) {
    super(message)
    this.code = code
    this.fd = fd
  }
}

/** errno number -> Node's name (`EBADF`, `ECANCELED`, ...), from `os.constants.errno`. */
const errnoNames = new Map<number, string>()
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name)
}

/** Node's name for a positive errno; `'E<number>'` for one Node does not name. */
export function errnoCode(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`
}

/** The error-factory table of I/O calls. */
export const IoErrors = {
  notAssociated: (fd: number): PortIoError =>
    new PortIoError(
      `fd ${fd} is not associated with this port; call port.associate(fd, key) first`,
      IoErrorCode.NotAssociated,
      fd,
    ),
  alreadyAssociated: (fd: number): PortIoError =>
    new PortIoError(`fd ${fd} is already associated with this port`, IoErrorCode.AlreadyAssociated, fd),
  badFd: (fd: number): PortIoError =>
    new PortIoError(`fd ${fd} is not an open file descriptor`, IoErrorCode.BadFd, fd),
  notAFile: (fd: number): PortIoError =>
    new PortIoError(
      `fd ${fd} must refer to a regular file or a block device (overlapped I/O is file I/O)`,
      IoErrorCode.NotAFile,
      fd,
    ),
  unavailable: (fd: number, why: string): PortIoError =>
    new PortIoError(`the requested I/O backend cannot run here: ${why}`, IoErrorCode.BackendUnavailable, fd),
  capacity: (fd: number): PortIoError =>
    new PortIoError(
      'overlapped I/O needs a port without a capacity (a completion can never be refused)',
      IoErrorCode.PortHasCapacity,
      fd,
    ),
  system: (fd: number, errno: number): Error =>
    Object.assign(new Error(`associating fd ${fd} failed: ${errnoCode(errno)}`), { code: errnoCode(errno), errno }),
  /** The addon could not allocate what a submission needs (`ENOMEM`); nothing was queued. */
  submitFailed: (fd: number, errno: number): Error =>
    Object.assign(new Error(`submitting I/O on fd ${fd} failed: ${errnoCode(errno)}; nothing was queued`), { code: errnoCode(errno), errno }),
} as const
