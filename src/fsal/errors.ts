// The error taxonomy of AegisFSAL. Every provider throws these (or raw errno errors, which
// `fromErrno` converts); the NFS layer maps them to nfsstat3 in exactly one place.

export const FSAL_ERROR_CODES = [
  'PERM',
  'NOENT',
  'IO',
  'ACCES',
  'EXIST',
  'XDEV',
  'NOTDIR',
  'ISDIR',
  'INVAL',
  'FBIG',
  'NOSPC',
  'ROFS',
  'MLINK',
  'NAMETOOLONG',
  'NOTEMPTY',
  'DQUOT',
  'STALE',
  'BADHANDLE',
  'NOT_SYNC',
  'BAD_COOKIE',
  'NOTSUPP',
  'TOOSMALL',
  'SERVERFAULT',
  'JUKEBOX'
] as const

export type FsalErrorCode = (typeof FSAL_ERROR_CODES)[number]

/** Base class: `code` is what callers match on, never the message. */
export class FsalError extends Error {
  override name = 'FsalError'
  constructor(
    readonly code: FsalErrorCode,
    message: string
  ) {
    super(message)
  }
}

/** Thrown when a name or handle names nothing. */
export class NotFound extends FsalError {
  override name = 'NotFound'
  constructor(message: string) {
    super('NOENT', message)
  }
}

/** Thrown when a create, mkdir, link or exclusive rename target already exists. */
export class Exists extends FsalError {
  override name = 'Exists'
  constructor(message: string) {
    super('EXIST', message)
  }
}

/** Thrown when a directory to remove or replace still has entries. */
export class NotEmpty extends FsalError {
  override name = 'NotEmpty'
  constructor(message: string) {
    super('NOTEMPTY', message)
  }
}

/** Thrown when an operation would take a volume over its size_limit; nothing was changed. */
export class QuotaExceeded extends FsalError {
  override name = 'QuotaExceeded'
  constructor(message: string) {
    super('DQUOT', message)
  }
}

/** Thrown for any modifying operation on a read-only volume. */
export class ReadOnly extends FsalError {
  override name = 'ReadOnly'
  constructor(message: string) {
    super('ROFS', message)
  }
}

/** Thrown when the caller may not do this (policy, export rules, or a blocked path). */
export class AccessDenied extends FsalError {
  override name = 'AccessDenied'
  constructor(message: string) {
    super('ACCES', message)
  }
}

/** Thrown when the operation is reserved to the owner or to privileged callers (chown). */
export class PermissionDenied extends FsalError {
  override name = 'PermissionDenied'
  constructor(message: string) {
    super('PERM', message)
  }
}

/** Thrown for a handle whose object no longer exists or changed identity. */
export class Stale extends FsalError {
  override name = 'Stale'
  constructor(message: string) {
    super('STALE', message)
  }
}

/** Thrown when an object was moved outside its volume on the host; AegisFSAL audits it as blocked. */
export class OutsideVolume extends Stale {
  override name = 'OutsideVolume'
}

/** Thrown for a handle that is malformed or whose authentication tag does not verify. */
export class BadHandle extends FsalError {
  override name = 'BadHandle'
  constructor(message: string) {
    super('BADHANDLE', message)
  }
}

/** Thrown for an argument the operation cannot accept (a bad name, a type mismatch). */
export class InvalidArgument extends FsalError {
  override name = 'InvalidArgument'
  constructor(message: string) {
    super('INVAL', message)
  }
}

export class NameTooLong extends FsalError {
  override name = 'NameTooLong'
  constructor(message: string) {
    super('NAMETOOLONG', message)
  }
}

export class NotDirectory extends FsalError {
  override name = 'NotDirectory'
  constructor(message: string) {
    super('NOTDIR', message)
  }
}

export class IsDirectory extends FsalError {
  override name = 'IsDirectory'
  constructor(message: string) {
    super('ISDIR', message)
  }
}

export class NotSupported extends FsalError {
  override name = 'NotSupported'
  constructor(message: string) {
    super('NOTSUPP', message)
  }
}

/** Thrown when a SETATTR guard (ctime) does not match the object's current ctime. */
export class NotSync extends FsalError {
  override name = 'NotSync'
  constructor(message: string) {
    super('NOT_SYNC', message)
  }
}

/** Thrown when a READDIR cookie verifier no longer names a listing this server holds. */
export class BadCookie extends FsalError {
  override name = 'BadCookie'
  constructor(message: string) {
    super('BAD_COOKIE', message)
  }
}

const ERRNO_CODES: Record<string, FsalErrorCode> = {
  EPERM: 'PERM',
  ENOENT: 'NOENT',
  EIO: 'IO',
  EACCES: 'ACCES',
  EEXIST: 'EXIST',
  EXDEV: 'XDEV',
  ENOTDIR: 'NOTDIR',
  EISDIR: 'ISDIR',
  EINVAL: 'INVAL',
  EFBIG: 'FBIG',
  ENOSPC: 'NOSPC',
  EROFS: 'ROFS',
  EMLINK: 'MLINK',
  ENAMETOOLONG: 'NAMETOOLONG',
  ENOTEMPTY: 'NOTEMPTY',
  EDQUOT: 'DQUOT',
  ESTALE: 'STALE',
  ELOOP: 'INVAL',
  EOPNOTSUPP: 'NOTSUPP',
  ENOTSUP: 'NOTSUPP',
  EBADF: 'STALE',
  EMFILE: 'JUKEBOX',
  ENFILE: 'JUKEBOX',
  EAGAIN: 'JUKEBOX',
  EBUSY: 'ACCES'
}

/** Converts an error with a Node-style `code` (ENOENT, ...) to an FsalError; others pass through. */
export function fromErrno(error: unknown, what: string): unknown {
  if (error instanceof FsalError) return error
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return error
  const fsalCode = ERRNO_CODES[code]
  if (fsalCode === undefined) return new FsalError('IO', `${what}: ${(error as Error).message}`)
  return new FsalError(fsalCode, `${what}: ${(error as Error).message}`)
}
