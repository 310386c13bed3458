// Attribute and argument types shared by AegisFSAL, the providers and the NFS layer.

export type FileType = 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'socket' | 'fifo'

/**
 * Attributes as a provider reports them. Ownership is absent on purpose: AegisFSAL shows every
 * object as owned by the volume's agent uid/gid, whatever the backend stores.
 */
export class FileAttributes {
  type: FileType = 'file'
  /** Permission bits, 0o7777 at most. */
  mode = 0
  nlink = 1
  sizeBytes = 0
  usedBytes = 0
  rdevMajor = 0
  rdevMinor = 0
  /** Stable id of the object inside its volume (an inode number on a host file system). */
  fileId = 0
  /** Changes when a fileId is reused for another object (a birth time); 0 when unknown. */
  generation = 0
  atimeSec = 0
  atimeNsec = 0
  mtimeSec = 0
  mtimeNsec = 0
  ctimeSec = 0
  ctimeNsec = 0
}

/** A time to set: a given instant, or the server's current time. */
export type SetTime = { kind: 'server' } | { kind: 'client'; sec: number; nsec: number }

/** The changes of a SETATTR; absent fields stay as they are. */
export interface SetAttributes {
  mode?: number
  uid?: number
  gid?: number
  sizeBytes?: number
  atime?: SetTime
  mtime?: SetTime
}

export type CreateMode = 'unchecked' | 'guarded' | 'exclusive'

/** Write stability (RFC 1813, section 3.3.7): 0 UNSTABLE, 1 DATA_SYNC, 2 FILE_SYNC. */
export type StableHow = 0 | 1 | 2

export interface FsStat {
  totalBytes: number
  freeBytes: number
  availableBytes: number
  totalFiles: number
  freeFiles: number
  availableFiles: number
}
