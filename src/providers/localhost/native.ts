// Typed access to the aegisfs native addon (native/aegisfs.c): directory-relative system calls
// with no-follow semantics and nanosecond timestamps.

import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileAttributes, type FileType } from '../../fsal/types.js'

interface NativeFs {
  fstatat(dirFd: number, name: string | Buffer, flags: number, target: Float64Array): void
  fstat(fd: number, target: Float64Array): void
  openat(dirFd: number, name: string | Buffer, flags: number, mode: number): number
  mkdirat(dirFd: number, name: string | Buffer, mode: number): void
  unlinkat(dirFd: number, name: string | Buffer, flags: number): void
  renameat2(oldDirFd: number, oldName: string | Buffer, newDirFd: number, newName: string | Buffer, flags: number): void
  linkat(oldDirFd: number, oldName: string | Buffer, newDirFd: number, newName: string | Buffer, flags: number): void
  symlinkat(target: string | Buffer, dirFd: number, name: string | Buffer): void
  readlinkat(dirFd: number, name: string | Buffer): Buffer
  utimensat(dirFd: number, name: string | Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, flags: number): void
  fchmodat(dirFd: number, name: string | Buffer, mode: number, flags: number): void
  fstatvfs(fd: number): number[]
  fdLocation(fd: number): Buffer
  readdir(dirFd: number): Buffer[]
  callAsync(op: AsyncOp, dirFd: number, name: string | Buffer, flags: number, mode: number, dirFd2: number, name2: string | Buffer): Promise<number>
}

/** Directory-changing calls that run on the thread pool (native/aegisfs.c, enum async_op). */
export const enum AsyncOp {
  OpenCreate = 0,
  Mkdir = 1,
  Unlink = 2,
  Rename = 3,
  Link = 4,
  Symlink = 5
}

function loadAddon(): NativeFs {
  const require = createRequire(import.meta.url)
  const here = path.dirname(fileURLToPath(import.meta.url))
  // Compiled code runs from dist/src/providers/localhost, sources (under vitest) from src/providers/localhost.
  const candidates = [path.resolve(here, '../../../build/Release/aegisfs.node'), path.resolve(here, '../../../../build/Release/aegisfs.node')]
  for (const candidate of candidates) {
    try {
      return require(candidate) as NativeFs
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error
    }
  }
  throw new Error(`native addon aegisfs.node not found (looked in ${candidates.join(', ')}); run "npm install" or "npm run build" to compile it`)
}

export const native: NativeFs = loadAddon()

// Linux x86-64 and arm64 values; the addon is Linux-only.
export const AT_FDCWD = -100
export const AT_SYMLINK_NOFOLLOW = 0x100
export const AT_REMOVEDIR = 0x200
export const AT_SYMLINK_FOLLOW = 0x400
export const O_RDONLY = 0
export const O_WRONLY = 1
export const O_RDWR = 2
export const O_CREAT = 0o100
export const O_EXCL = 0o200
export const O_NONBLOCK = 0o4000
export const O_DIRECTORY = 0o200000
export const O_NOFOLLOW = 0o400000
export const O_PATH = 0o10000000
export const RENAME_NOREPLACE = 1
export const UTIME_NOW = -1
export const UTIME_OMIT = -2

const S_IFMT = 0o170000
const TYPES = new Map<number, FileType>([
  [0o100000, 'file'],
  [0o040000, 'dir'],
  [0o120000, 'symlink'],
  [0o060000, 'block'],
  [0o020000, 'char'],
  [0o140000, 'socket'],
  [0o010000, 'fifo']
])

/** Scratch space for one stat call; safe because the calls are synchronous. */
const statBuffer = new Float64Array(20)
const TWO_POW_32 = 0x1_0000_0000
const GENERATION_SECONDS_MODULUS = 2 ** 23

function toAttributes(stat: Float64Array): FileAttributes {
  const attributes = new FileAttributes()
  const mode = stat[0]
  attributes.type = TYPES.get(mode & S_IFMT) ?? 'file'
  attributes.mode = mode & 0o7777
  attributes.nlink = stat[1]
  attributes.sizeBytes = stat[4]
  attributes.usedBytes = stat[5]
  attributes.rdevMajor = stat[6]
  attributes.rdevMinor = stat[7]
  attributes.fileId = stat[10] * TWO_POW_32 + stat[11]
  attributes.atimeSec = stat[12]
  attributes.atimeNsec = stat[13]
  attributes.mtimeSec = stat[14]
  attributes.mtimeNsec = stat[15]
  attributes.ctimeSec = stat[16]
  attributes.ctimeNsec = stat[17]
  // The birth time to the nanosecond, its seconds reduced modulo 2^23 (97 days) to fit in 53 bits.
  attributes.generation = (stat[18] % GENERATION_SECONDS_MODULUS) * 2 ** 30 + stat[19]
  return attributes
}

export function statAt(dirFd: number, name: string | Buffer): FileAttributes {
  native.fstatat(dirFd, name, AT_SYMLINK_NOFOLLOW, statBuffer)
  return toAttributes(statBuffer)
}

export function statFd(fd: number): FileAttributes {
  native.fstat(fd, statBuffer)
  return toAttributes(statBuffer)
}
