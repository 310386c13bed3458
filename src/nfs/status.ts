// The one place where AegisFSAL errors become NFSv3 status codes (RFC 1813, section 2.6).

import { FsalError, type FsalErrorCode } from '../fsal/errors.js'

export const enum Nfsstat3 {
  OK = 0,
  PERM = 1,
  NOENT = 2,
  IO = 5,
  NXIO = 6,
  ACCES = 13,
  EXIST = 17,
  XDEV = 18,
  NODEV = 19,
  NOTDIR = 20,
  ISDIR = 21,
  INVAL = 22,
  FBIG = 27,
  NOSPC = 28,
  ROFS = 30,
  MLINK = 31,
  NAMETOOLONG = 63,
  NOTEMPTY = 66,
  DQUOT = 69,
  STALE = 70,
  REMOTE = 71,
  BADHANDLE = 10001,
  NOT_SYNC = 10002,
  BAD_COOKIE = 10003,
  NOTSUPP = 10004,
  TOOSMALL = 10005,
  SERVERFAULT = 10006,
  BADTYPE = 10007,
  JUKEBOX = 10008
}

const BY_CODE: Record<FsalErrorCode, Nfsstat3> = {
  PERM: Nfsstat3.PERM,
  NOENT: Nfsstat3.NOENT,
  IO: Nfsstat3.IO,
  ACCES: Nfsstat3.ACCES,
  EXIST: Nfsstat3.EXIST,
  XDEV: Nfsstat3.XDEV,
  NOTDIR: Nfsstat3.NOTDIR,
  ISDIR: Nfsstat3.ISDIR,
  INVAL: Nfsstat3.INVAL,
  FBIG: Nfsstat3.FBIG,
  NOSPC: Nfsstat3.NOSPC,
  ROFS: Nfsstat3.ROFS,
  MLINK: Nfsstat3.MLINK,
  NAMETOOLONG: Nfsstat3.NAMETOOLONG,
  NOTEMPTY: Nfsstat3.NOTEMPTY,
  DQUOT: Nfsstat3.DQUOT,
  STALE: Nfsstat3.STALE,
  BADHANDLE: Nfsstat3.BADHANDLE,
  NOT_SYNC: Nfsstat3.NOT_SYNC,
  BAD_COOKIE: Nfsstat3.BAD_COOKIE,
  NOTSUPP: Nfsstat3.NOTSUPP,
  TOOSMALL: Nfsstat3.TOOSMALL,
  SERVERFAULT: Nfsstat3.SERVERFAULT,
  JUKEBOX: Nfsstat3.JUKEBOX
}

const NAMES = new Map<number, string>(Object.entries(BY_CODE).map(([name, value]) => [value, name]))
NAMES.set(Nfsstat3.OK, 'OK')

/** Returns the nfsstat3 for an FsalError, or undefined for any other error (a server fault). */
export function nfsStatusOf(error: unknown): Nfsstat3 | undefined {
  return error instanceof FsalError ? BY_CODE[error.code] : undefined
}

export function statusName(status: number): string {
  return NAMES.get(status) ?? String(status)
}
