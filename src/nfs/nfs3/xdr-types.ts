// Encoders and decoders for the NFSv3 data types shared by several procedures (RFC 1813, section 2.5).

import { FsalError } from '../../fsal/errors.js'
import type { FileAttributes, SetAttributes, SetTime } from '../../fsal/types.js'
import { XdrError, type XdrReader, type XdrWriter } from '../xdr.js'

export const NFS3_FHSIZE = 64
/** Longest name read off the wire; longer than NAME_MAX so that AegisFSAL can return NAMETOOLONG. */
export const NAME_WIRE_MAX = 1024
export const PATH_WIRE_MAX = 4096

const FATTR3_BYTES = 84

const FTYPE: Record<FileAttributes['type'], number> = {
  file: 1,
  dir: 2,
  block: 3,
  char: 4,
  symlink: 5,
  socket: 6,
  fifo: 7
}

/** The volume's part of every fattr3: its fsid and the squashed owner. */
export interface AttributeView {
  fsid: number
  uid: number
  gid: number
}

export function writeFattr3(w: XdrWriter, a: FileAttributes, view: AttributeView): void {
  w.reserve(FATTR3_BYTES)
  w.u32(FTYPE[a.type])
  w.u32(a.mode)
  w.u32(a.nlink)
  w.u32(view.uid)
  w.u32(view.gid)
  w.u64(a.sizeBytes)
  w.u64(a.usedBytes)
  w.u32(a.rdevMajor)
  w.u32(a.rdevMinor)
  w.u64(view.fsid)
  w.u64(a.fileId)
  w.u32(a.atimeSec)
  w.u32(a.atimeNsec)
  w.u32(a.mtimeSec)
  w.u32(a.mtimeNsec)
  w.u32(a.ctimeSec)
  w.u32(a.ctimeNsec)
}

export function writePostOpAttr(w: XdrWriter, a: FileAttributes | null, view: AttributeView | null): void {
  if (a === null || view === null) {
    w.u32(0)
    return
  }
  w.u32(1)
  writeFattr3(w, a, view)
}

export function writeWcc(w: XdrWriter, before: FileAttributes | null, after: FileAttributes | null, view: AttributeView | null): void {
  if (before === null || view === null) {
    w.u32(0)
  } else {
    w.u32(1)
    w.u64(before.sizeBytes)
    w.u32(before.mtimeSec)
    w.u32(before.mtimeNsec)
    w.u32(before.ctimeSec)
    w.u32(before.ctimeNsec)
  }
  writePostOpAttr(w, after, view)
}

export function writePostOpHandle(w: XdrWriter, handle: Buffer | null): void {
  if (handle === null) {
    w.u32(0)
    return
  }
  w.u32(1)
  w.opaque(handle)
}

export function readHandle(r: XdrReader): Buffer {
  return r.opaque(NFS3_FHSIZE)
}

export function readName(r: XdrReader): Buffer {
  return r.opaque(NAME_WIRE_MAX)
}

function readSetTime(r: XdrReader): SetTime | undefined {
  const how = r.u32()
  if (how === 0) return undefined
  if (how === 1) return { kind: 'server' }
  if (how === 2) {
    const sec = r.u32()
    const nsec = r.u32()
    if (nsec >= 1e9) throw new XdrError(`nanoseconds ${nsec} out of range`)
    return { kind: 'client', sec, nsec }
  }
  throw new XdrError(`time_how ${how} is not defined`)
}

export function readSattr3(r: XdrReader): SetAttributes {
  const changes: SetAttributes = {}
  if (r.bool()) changes.mode = r.u32() & 0o7777
  if (r.bool()) changes.uid = r.u32()
  if (r.bool()) changes.gid = r.u32()
  if (r.bool()) {
    const size = r.u64big()
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsalError('FBIG', `size ${size} is above the largest file size, 2^53 - 1 bytes`)
    changes.sizeBytes = Number(size)
  }
  const atime = readSetTime(r)
  if (atime !== undefined) changes.atime = atime
  const mtime = readSetTime(r)
  if (mtime !== undefined) changes.mtime = mtime
  return changes
}
