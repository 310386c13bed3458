// Conversion of the filer's entry JSON (Go's encoding/json of filer.Entry, as `metadata=true` and
// directory listings return it) to FileAttributes.

import { FsalError } from '../../fsal/errors.js'
import { FileAttributes, type FileType } from '../../fsal/types.js'

/** Go's os.ModeDir and os.ModeSymlink bits in an entry's `Mode`. */
const GO_MODE_DIR = 2 ** 31
const GO_MODE_SYMLINK = 2 ** 27
/**
 * Request header whose value the filer keeps in the entry's `Extended` map: "<atime>:<mtime>" in
 * Unix seconds, as a client set them on an empty file (see SeaweedFsProvider.setattr).
 */
export const CLIENT_TIMES_HEADER = 'Seaweed-Aegis-Times'
/** Handles carry file ids below 2^53 (see src/fsal/handle.ts). */
const FILE_ID_LIMIT = 2n ** 53n

/** The fields of a filer entry that the provider reads. */
export interface FilerEntry {
  FullPath: string
  Mtime: string
  Crtime: string
  Mode: number
  FileSize: number
  /** Kept as text because a uint64 does not fit in a JavaScript number. */
  Inode: string
  SymlinkTarget?: string
  /** Stored request headers, base64-encoded by name. */
  Extended?: Record<string, string> | null
}

export interface FilerListing {
  Entries: FilerEntry[] | null
  LastFileName: string
  ShouldDisplayLoadMore: boolean
}

/**
 * Parses a JSON body of the filer, keeping every `Inode` as a string so that ids above 2^53 keep
 * their digits.
 */
export function parseFilerJson<T>(body: Buffer, what: string): T {
  const text = body.toString('utf8').replace(/"Inode":(\d+)/g, '"Inode":"$1"')
  try {
    return JSON.parse(text) as T
  } catch {
    throw new FsalError('IO', `${what}: the filer sent invalid JSON: ${text.slice(0, 200)}`)
  }
}

/**
 * Returns the file id for an inode: the inode itself below 2^53, else the inode folded into 53
 * bits. Returns 0 for a missing inode.
 * NOTE: folding can give two objects the same file id. Whether a real filer hands out inodes at or
 * above 2^53 is unverified, and this path is untested.
 */
export function fileIdOf(inode: string | undefined): number {
  if (inode === undefined || !/^\d+$/.test(inode)) return 0
  const value = BigInt(inode)
  if (value < FILE_ID_LIMIT) return Number(value)
  return Number((value ^ (value >> 53n)) % FILE_ID_LIMIT)
}

/** Returns whole Unix seconds from an RFC 3339 time, 0 when it is missing or invalid. */
function secondsOf(time: string | undefined): number {
  if (time === undefined) return 0
  const ms = Date.parse(time)
  return Number.isNaN(ms) || ms < 0 ? 0 : Math.floor(ms / 1000)
}

function typeOf(mode: number): FileType {
  if (mode >= GO_MODE_DIR) return 'dir'
  if (Math.floor(mode / GO_MODE_SYMLINK) % 2 === 1) return 'symlink'
  return 'file'
}

/**
 * Converts an entry to attributes. The filer keeps no ctime or atime, so both report the mtime,
 * and its times are whole seconds. The generation is the creation time.
 */
export function attributesOf(entry: FilerEntry): FileAttributes {
  const attributes = new FileAttributes()
  attributes.type = typeOf(entry.Mode)
  attributes.mode = entry.Mode % 0o1000
  attributes.sizeBytes = attributes.type === 'dir' ? 0 : entry.FileSize
  attributes.usedBytes = attributes.sizeBytes
  attributes.fileId = fileIdOf(entry.Inode)
  attributes.generation = secondsOf(entry.Crtime)

  const mtimeSec = secondsOf(entry.Mtime)
  attributes.mtimeSec = mtimeSec
  attributes.atimeSec = mtimeSec
  attributes.ctimeSec = mtimeSec

  // Times a client set count only while the file stays empty, because writes at an offset keep
  // the stored header but change the content.
  const clientTimes = entry.Extended?.[CLIENT_TIMES_HEADER]
  if (clientTimes !== undefined && attributes.type === 'file' && attributes.sizeBytes === 0) {
    const match = /^(\d+):(\d+)$/.exec(Buffer.from(clientTimes, 'base64').toString('latin1'))
    if (match !== null) {
      attributes.atimeSec = Number(match[1])
      attributes.mtimeSec = Number(match[2])
    }
  }
  return attributes
}
