// A typed NFSv3 and MOUNT v3 client (RFC 1813, including appendix I) on top of RpcClient.
//
// Every procedure method returns the decoded result with its nfsstat3 as a name ('OK', 'NOENT',
// ...), so a failed expectation shows which status came back. Failure bodies are decoded too,
// because they carry post_op_attr and wcc_data. A reply that is not MSG_ACCEPTED/SUCCESS throws
// RpcCallError. Argument encoders and result decoders are exported separately so that tests can
// build a record once and send it several times (retransmissions, pipelining).

import type { XdrReader, XdrWriter } from '../../src/nfs/xdr.js'
import { type ArgsWriter, type Credential, MOUNT_PROGRAM, NFS_PROGRAM, RpcClient, type RpcReply } from './rpc-client.js'

export const NFS_VERSION = 3
export const MOUNT_VERSION = 3

/** NFSv3 procedure numbers (RFC 1813, section 3.3). */
export const Proc = {
  NULL: 0,
  GETATTR: 1,
  SETATTR: 2,
  LOOKUP: 3,
  ACCESS: 4,
  READLINK: 5,
  READ: 6,
  WRITE: 7,
  CREATE: 8,
  MKDIR: 9,
  SYMLINK: 10,
  MKNOD: 11,
  REMOVE: 12,
  RMDIR: 13,
  RENAME: 14,
  LINK: 15,
  READDIR: 16,
  READDIRPLUS: 17,
  FSSTAT: 18,
  FSINFO: 19,
  PATHCONF: 20,
  COMMIT: 21
} as const

const PROCEDURE_NAMES = Object.keys(Proc)

/** MOUNT v3 procedure numbers (RFC 1813, appendix I). */
export const MountProc = { NULL: 0, MNT: 1, DUMP: 2, UMNT: 3, UMNTALL: 4, EXPORT: 5 } as const

const NFS_STATUS_NAMES: Record<number, string> = {
  0: 'OK',
  1: 'PERM',
  2: 'NOENT',
  5: 'IO',
  6: 'NXIO',
  13: 'ACCES',
  17: 'EXIST',
  18: 'XDEV',
  19: 'NODEV',
  20: 'NOTDIR',
  21: 'ISDIR',
  22: 'INVAL',
  27: 'FBIG',
  28: 'NOSPC',
  30: 'ROFS',
  31: 'MLINK',
  63: 'NAMETOOLONG',
  66: 'NOTEMPTY',
  69: 'DQUOT',
  70: 'STALE',
  71: 'REMOTE',
  10001: 'BADHANDLE',
  10002: 'NOT_SYNC',
  10003: 'BAD_COOKIE',
  10004: 'NOTSUPP',
  10005: 'TOOSMALL',
  10006: 'SERVERFAULT',
  10007: 'BADTYPE',
  10008: 'JUKEBOX'
}

const MOUNT_STATUS_NAMES: Record<number, string> = {
  0: 'OK',
  1: 'PERM',
  2: 'NOENT',
  5: 'IO',
  13: 'ACCES',
  20: 'NOTDIR',
  22: 'INVAL',
  63: 'NAMETOOLONG',
  10004: 'NOTSUPP',
  10006: 'SERVERFAULT'
}

/** Returns the name of an nfsstat3 value, or "UNKNOWN(n)" for a value RFC 1813 does not define. */
export function nfsStatusName(value: number): string {
  return NFS_STATUS_NAMES[value] ?? `UNKNOWN(${value})`
}

export function mountStatusName(value: number): string {
  return MOUNT_STATUS_NAMES[value] ?? `UNKNOWN(${value})`
}

export type FileType = 'REG' | 'DIR' | 'BLK' | 'CHR' | 'LNK' | 'SOCK' | 'FIFO'
const FILE_TYPES: Record<number, FileType> = { 1: 'REG', 2: 'DIR', 3: 'BLK', 4: 'CHR', 5: 'LNK', 6: 'SOCK', 7: 'FIFO' }

export interface NfsTime {
  sec: number
  nsec: number
}

export interface Fattr3 {
  type: FileType
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  used: number
  rdev: { major: number; minor: number }
  fsid: bigint
  fileid: number
  atime: NfsTime
  mtime: NfsTime
  ctime: NfsTime
}

/** wcc_attr: the pre-operation attributes of wcc_data. */
export interface WccAttr {
  size: number
  mtime: NfsTime
  ctime: NfsTime
}

export interface WccData {
  before: WccAttr | null
  after: Fattr3 | null
}

/** sattr3: absent fields are left unchanged; a time is a client time or 'server' (SET_TO_SERVER_TIME). */
export interface Sattr3 {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atime?: NfsTime | 'server'
  mtime?: NfsTime | 'server'
}

export type CreateHow = { mode: 'unchecked' | 'guarded'; attributes?: Sattr3 } | { mode: 'exclusive'; verifier: Buffer }

export const StableHow = { UNSTABLE: 0, DATA_SYNC: 1, FILE_SYNC: 2 } as const

export const Access = { READ: 0x01, LOOKUP: 0x02, MODIFY: 0x04, EXTEND: 0x08, DELETE: 0x10, EXECUTE: 0x20 } as const

export interface CallOptions {
  xid?: number
  credential?: Credential
}

const ACCEPT_STAT_NAMES = ['SUCCESS', 'PROG_UNAVAIL', 'PROG_MISMATCH', 'PROC_UNAVAIL', 'GARBAGE_ARGS', 'SYSTEM_ERR']
const REJECT_STAT_NAMES = ['RPC_MISMATCH', 'AUTH_ERROR']

/** Thrown when the RPC layer rejects a call (anything but MSG_ACCEPTED with SUCCESS). */
export class RpcCallError extends Error {
  override name = 'RpcCallError'
  constructor(
    readonly reply: RpcReply,
    what: string
  ) {
    const accepted = reply.replyStat === 0
    const statName = (accepted ? ACCEPT_STAT_NAMES : REJECT_STAT_NAMES)[reply.stat] ?? String(reply.stat)
    super(`${what} was not run: ${accepted ? 'MSG_ACCEPTED' : 'MSG_DENIED'} with ${statName}`)
  }
}

// Decoders of the shared data types (RFC 1813, section 2.5).

function readTime(r: XdrReader): NfsTime {
  return { sec: r.u32(), nsec: r.u32() }
}

export function readFattr3(r: XdrReader): Fattr3 {
  const typeValue = r.u32()
  const type = FILE_TYPES[typeValue]
  if (type === undefined) throw new Error(`fattr3 has undefined ftype3 ${typeValue}`)
  return {
    type,
    mode: r.u32(),
    nlink: r.u32(),
    uid: r.u32(),
    gid: r.u32(),
    size: r.u64(),
    used: r.u64(),
    rdev: { major: r.u32(), minor: r.u32() },
    fsid: r.u64big(),
    fileid: r.u64(),
    atime: readTime(r),
    mtime: readTime(r),
    ctime: readTime(r)
  }
}

export function readPostOpAttr(r: XdrReader): Fattr3 | null {
  return r.bool() ? readFattr3(r) : null
}

export function readWcc(r: XdrReader): WccData {
  const before = r.bool() ? { size: r.u64(), mtime: readTime(r), ctime: readTime(r) } : null
  return { before, after: readPostOpAttr(r) }
}

function readPostOpHandle(r: XdrReader): Buffer | null {
  return r.bool() ? Buffer.from(r.opaque(64)) : null
}

// Encoders of the shared data types.

function writeName(w: XdrWriter, name: string | Buffer): void {
  if (typeof name === 'string') w.string(name)
  else w.opaque(name)
}

function writeSetTime(w: XdrWriter, time: NfsTime | 'server' | undefined): void {
  if (time === undefined) {
    w.u32(0) // DONT_CHANGE
  } else if (time === 'server') {
    w.u32(1) // SET_TO_SERVER_TIME
  } else {
    w.u32(2) // SET_TO_CLIENT_TIME
    w.u32(time.sec)
    w.u32(time.nsec)
  }
}

export function writeSattr3(w: XdrWriter, s: Sattr3 = {}): void {
  for (const value of [s.mode, s.uid, s.gid]) {
    w.bool(value !== undefined)
    if (value !== undefined) w.u32(value)
  }
  w.bool(s.size !== undefined)
  if (s.size !== undefined) w.u64(s.size)
  writeSetTime(w, s.atime)
  writeSetTime(w, s.mtime)
}

/** Argument encoders, one per procedure, in RFC 1813 order. */
export const encode = {
  getattr: (fh: Buffer): ArgsWriter => (w) => w.opaque(fh),
  setattr:
    (fh: Buffer, attributes: Sattr3, guardCtime: NfsTime | null = null): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      writeSattr3(w, attributes)
      w.bool(guardCtime !== null)
      if (guardCtime !== null) {
        w.u32(guardCtime.sec)
        w.u32(guardCtime.nsec)
      }
    },
  lookup:
    (dir: Buffer, name: string | Buffer): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
    },
  access:
    (fh: Buffer, mask: number): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      w.u32(mask)
    },
  readlink: (fh: Buffer): ArgsWriter => (w) => w.opaque(fh),
  read:
    (fh: Buffer, offset: number | bigint, count: number): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      w.u64big(BigInt(offset))
      w.u32(count)
    },
  write:
    (fh: Buffer, offset: number | bigint, data: Buffer, stable: number, count = data.length): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      w.u64big(BigInt(offset))
      w.u32(count)
      w.u32(stable)
      w.opaque(data)
    },
  create:
    (dir: Buffer, name: string | Buffer, how: CreateHow): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
      if (how.mode === 'exclusive') {
        w.u32(2)
        if (how.verifier.length !== 8) throw new Error(`createverf3 must be 8 bytes, got ${how.verifier.length}`)
        w.fixed(how.verifier)
      } else {
        w.u32(how.mode === 'unchecked' ? 0 : 1)
        writeSattr3(w, how.attributes)
      }
    },
  mkdir:
    (dir: Buffer, name: string | Buffer, attributes: Sattr3 = {}): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
      writeSattr3(w, attributes)
    },
  symlink:
    (dir: Buffer, name: string | Buffer, target: string | Buffer, attributes: Sattr3 = {}): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
      writeSattr3(w, attributes)
      writeName(w, target)
    },
  /** MKNOD of a FIFO (the type needs no device numbers). */
  mknodFifo:
    (dir: Buffer, name: string | Buffer, attributes: Sattr3 = {}): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
      w.u32(7) // NF3FIFO
      writeSattr3(w, attributes)
    },
  remove:
    (dir: Buffer, name: string | Buffer): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      writeName(w, name)
    },
  rename:
    (fromDir: Buffer, fromName: string | Buffer, toDir: Buffer, toName: string | Buffer): ArgsWriter =>
    (w) => {
      w.opaque(fromDir)
      writeName(w, fromName)
      w.opaque(toDir)
      writeName(w, toName)
    },
  link:
    (fh: Buffer, dir: Buffer, name: string | Buffer): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      w.opaque(dir)
      writeName(w, name)
    },
  readdir:
    (dir: Buffer, cookie: bigint, verifier: Buffer, count: number): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      w.u64big(cookie)
      w.fixed(verifier)
      w.u32(count)
    },
  readdirplus:
    (dir: Buffer, cookie: bigint, verifier: Buffer, dircount: number, maxcount: number): ArgsWriter =>
    (w) => {
      w.opaque(dir)
      w.u64big(cookie)
      w.fixed(verifier)
      w.u32(dircount)
      w.u32(maxcount)
    },
  fsstat: (fh: Buffer): ArgsWriter => (w) => w.opaque(fh),
  fsinfo: (fh: Buffer): ArgsWriter => (w) => w.opaque(fh),
  pathconf: (fh: Buffer): ArgsWriter => (w) => w.opaque(fh),
  commit:
    (fh: Buffer, offset: number, count: number): ArgsWriter =>
    (w) => {
      w.opaque(fh)
      w.u64(offset)
      w.u32(count)
    }
}

// Result types and decoders.

export interface GetattrResult {
  status: string
  attributes: Fattr3 | null
}

export interface WccResult {
  status: string
  wcc: WccData
}

export interface LookupResult {
  status: string
  handle: Buffer | null
  attributes: Fattr3 | null
  dirAttributes: Fattr3 | null
}

export interface AccessResult {
  status: string
  attributes: Fattr3 | null
  access: number | null
}

export interface ReadlinkResult {
  status: string
  attributes: Fattr3 | null
  target: Buffer | null
}

export interface ReadResult {
  status: string
  attributes: Fattr3 | null
  count: number | null
  eof: boolean | null
  data: Buffer | null
}

export interface WriteResult {
  status: string
  wcc: WccData
  count: number | null
  committed: number | null
  verifier: Buffer | null
}

/** CREATE, MKDIR, SYMLINK and MKNOD (diropres3). */
export interface DiropResult {
  status: string
  handle: Buffer | null
  attributes: Fattr3 | null
  dirWcc: WccData
}

export interface RenameResult {
  status: string
  fromDirWcc: WccData
  toDirWcc: WccData
}

export interface LinkResult {
  status: string
  attributes: Fattr3 | null
  dirWcc: WccData
}

export interface DirEntry {
  fileid: number
  name: string
  cookie: bigint
  /** READDIRPLUS only. */
  attributes?: Fattr3 | null
  /** READDIRPLUS only. */
  handle?: Buffer | null
}

export interface ReaddirResult {
  status: string
  dirAttributes: Fattr3 | null
  cookieverf: Buffer | null
  entries: DirEntry[]
  eof: boolean | null
  /** Bytes of the procedure results (the RPC reply minus its 24-byte accepted header). */
  resultBytes: number
}

export interface FsstatResult {
  status: string
  attributes: Fattr3 | null
  tbytes?: number
  fbytes?: number
  abytes?: number
  tfiles?: number
  ffiles?: number
  afiles?: number
  invarsec?: number
}

export interface FsinfoResult {
  status: string
  attributes: Fattr3 | null
  rtmax?: number
  rtpref?: number
  rtmult?: number
  wtmax?: number
  wtpref?: number
  wtmult?: number
  dtpref?: number
  maxfilesize?: bigint
  timeDelta?: NfsTime
  properties?: number
}

export interface PathconfResult {
  status: string
  attributes: Fattr3 | null
  linkmax?: number
  nameMax?: number
  noTrunc?: boolean
  chownRestricted?: boolean
  caseInsensitive?: boolean
  casePreserving?: boolean
}

export interface CommitResult {
  status: string
  wcc: WccData
  verifier: Buffer | null
}

function status(r: XdrReader): string {
  return nfsStatusName(r.u32())
}

export const decode = {
  getattr(r: XdrReader): GetattrResult {
    const s = status(r)
    return { status: s, attributes: s === 'OK' ? readFattr3(r) : null }
  },
  /** SETATTR, REMOVE and RMDIR: wcc_data on success and on failure. */
  wcc(r: XdrReader): WccResult {
    return { status: status(r), wcc: readWcc(r) }
  },
  lookup(r: XdrReader): LookupResult {
    const s = status(r)
    if (s !== 'OK') return { status: s, handle: null, attributes: null, dirAttributes: readPostOpAttr(r) }
    const handle = Buffer.from(r.opaque(64))
    return { status: s, handle, attributes: readPostOpAttr(r), dirAttributes: readPostOpAttr(r) }
  },
  access(r: XdrReader): AccessResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    return { status: s, attributes, access: s === 'OK' ? r.u32() : null }
  },
  readlink(r: XdrReader): ReadlinkResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    return { status: s, attributes, target: s === 'OK' ? Buffer.from(r.opaque(1 << 20)) : null }
  },
  read(r: XdrReader): ReadResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    if (s !== 'OK') return { status: s, attributes, count: null, eof: null, data: null }
    const count = r.u32()
    const eof = r.bool()
    const data = Buffer.from(r.opaque(0xffff_ffff))
    return { status: s, attributes, count, eof, data }
  },
  write(r: XdrReader): WriteResult {
    const s = status(r)
    const wcc = readWcc(r)
    if (s !== 'OK') return { status: s, wcc, count: null, committed: null, verifier: null }
    return { status: s, wcc, count: r.u32(), committed: r.u32(), verifier: Buffer.from(r.fixed(8)) }
  },
  dirop(r: XdrReader): DiropResult {
    const s = status(r)
    if (s !== 'OK') return { status: s, handle: null, attributes: null, dirWcc: readWcc(r) }
    const handle = readPostOpHandle(r)
    const attributes = readPostOpAttr(r)
    return { status: s, handle, attributes, dirWcc: readWcc(r) }
  },
  rename(r: XdrReader): RenameResult {
    return { status: status(r), fromDirWcc: readWcc(r), toDirWcc: readWcc(r) }
  },
  link(r: XdrReader): LinkResult {
    return { status: status(r), attributes: readPostOpAttr(r), dirWcc: readWcc(r) }
  },
  readdir(r: XdrReader, plus: boolean): ReaddirResult {
    const start = r.offset
    const s = status(r)
    const dirAttributes = readPostOpAttr(r)
    if (s !== 'OK') return { status: s, dirAttributes, cookieverf: null, entries: [], eof: null, resultBytes: r.end - start }
    const cookieverf = Buffer.from(r.fixed(8))
    const entries: DirEntry[] = []
    while (r.bool()) {
      const fileid = r.u64()
      const name = r.opaque(255 * 4).toString('utf8')
      const cookie = r.u64big()
      const entry: DirEntry = { fileid, name, cookie }
      if (plus) {
        entry.attributes = readPostOpAttr(r)
        entry.handle = readPostOpHandle(r)
      }
      entries.push(entry)
    }
    const eof = r.bool()
    return { status: s, dirAttributes, cookieverf, entries, eof, resultBytes: r.end - start }
  },
  fsstat(r: XdrReader): FsstatResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    if (s !== 'OK') return { status: s, attributes }
    return {
      status: s,
      attributes,
      tbytes: r.u64(),
      fbytes: r.u64(),
      abytes: r.u64(),
      tfiles: r.u64(),
      ffiles: r.u64(),
      afiles: r.u64(),
      invarsec: r.u32()
    }
  },
  fsinfo(r: XdrReader): FsinfoResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    if (s !== 'OK') return { status: s, attributes }
    return {
      status: s,
      attributes,
      rtmax: r.u32(),
      rtpref: r.u32(),
      rtmult: r.u32(),
      wtmax: r.u32(),
      wtpref: r.u32(),
      wtmult: r.u32(),
      dtpref: r.u32(),
      maxfilesize: r.u64big(),
      timeDelta: readTime(r),
      properties: r.u32()
    }
  },
  pathconf(r: XdrReader): PathconfResult {
    const s = status(r)
    const attributes = readPostOpAttr(r)
    if (s !== 'OK') return { status: s, attributes }
    return {
      status: s,
      attributes,
      linkmax: r.u32(),
      nameMax: r.u32(),
      noTrunc: r.bool(),
      chownRestricted: r.bool(),
      caseInsensitive: r.bool(),
      casePreserving: r.bool()
    }
  },
  commit(r: XdrReader): CommitResult {
    const s = status(r)
    const wcc = readWcc(r)
    return { status: s, wcc, verifier: s === 'OK' ? Buffer.from(r.fixed(8)) : null }
  }
}

export interface MntResult {
  status: string
  handle: Buffer | null
  authFlavors: number[]
}

export interface MountEntry {
  host: string
  dir: string
}

export interface ExportEntry {
  dir: string
  groups: string[]
}

/** An NFSv3 and MOUNT v3 client over one TCP connection. */
export class Nfs3Client {
  private constructor(readonly rpc: RpcClient) {}

  static async connect(port: number): Promise<Nfs3Client> {
    return new Nfs3Client(await RpcClient.connect(port))
  }

  close(): void {
    this.rpc.close()
  }

  /** Sends one NFSv3 call and returns the reply positioned at the results; throws unless it was accepted. */
  async callNfs(procedure: number, args: ArgsWriter, options: CallOptions = {}): Promise<RpcReply> {
    const reply = await this.rpc.call(NFS_PROGRAM, NFS_VERSION, procedure, args, options)
    if (reply.replyStat !== 0 || reply.stat !== 0) throw new RpcCallError(reply, `NFS procedure ${procedure} (${PROCEDURE_NAMES[procedure] ?? 'unknown'})`)
    return reply
  }

  async callMount(procedure: number, args: ArgsWriter = () => {}, options: CallOptions = {}): Promise<RpcReply> {
    const reply = await this.rpc.call(MOUNT_PROGRAM, MOUNT_VERSION, procedure, args, options)
    if (reply.replyStat !== 0 || reply.stat !== 0) throw new RpcCallError(reply, `MOUNT procedure ${procedure}`)
    return reply
  }

  // MOUNT v3.

  async mountNull(): Promise<void> {
    await this.callMount(MountProc.NULL)
  }

  async mnt(dirPath: string): Promise<MntResult> {
    const r = (await this.callMount(MountProc.MNT, (w) => w.string(dirPath))).body
    const s = mountStatusName(r.u32())
    if (s !== 'OK') return { status: s, handle: null, authFlavors: [] }
    const handle = Buffer.from(r.opaque(64))
    const flavors: number[] = []
    for (let count = r.u32(); count > 0; count--) flavors.push(r.u32())
    return { status: s, handle, authFlavors: flavors }
  }

  /** MNT that must succeed; returns the root handle. */
  async mount(dirPath: string): Promise<Buffer> {
    const result = await this.mnt(dirPath)
    if (result.status !== 'OK' || result.handle === null) throw new Error(`MNT ${dirPath} failed with ${result.status}`)
    return result.handle
  }

  async dump(): Promise<MountEntry[]> {
    const r = (await this.callMount(MountProc.DUMP)).body
    const entries: MountEntry[] = []
    while (r.bool()) entries.push({ host: r.opaque(255).toString('utf8'), dir: r.opaque(1024).toString('utf8') })
    return entries
  }

  async umnt(dirPath: string): Promise<void> {
    await this.callMount(MountProc.UMNT, (w) => w.string(dirPath))
  }

  async umntall(): Promise<void> {
    await this.callMount(MountProc.UMNTALL)
  }

  async exports(): Promise<ExportEntry[]> {
    const r = (await this.callMount(MountProc.EXPORT)).body
    const entries: ExportEntry[] = []
    while (r.bool()) {
      const dir = r.opaque(1024).toString('utf8')
      const groups: string[] = []
      while (r.bool()) groups.push(r.opaque(255).toString('utf8'))
      entries.push({ dir, groups })
    }
    return entries
  }

  // NFSv3.

  async null(options?: CallOptions): Promise<void> {
    await this.callNfs(Proc.NULL, () => {}, options)
  }

  async getattr(fh: Buffer, options?: CallOptions): Promise<GetattrResult> {
    return decode.getattr((await this.callNfs(Proc.GETATTR, encode.getattr(fh), options)).body)
  }

  async setattr(fh: Buffer, attributes: Sattr3, guardCtime: NfsTime | null = null, options?: CallOptions): Promise<WccResult> {
    return decode.wcc((await this.callNfs(Proc.SETATTR, encode.setattr(fh, attributes, guardCtime), options)).body)
  }

  async lookup(dir: Buffer, name: string | Buffer, options?: CallOptions): Promise<LookupResult> {
    return decode.lookup((await this.callNfs(Proc.LOOKUP, encode.lookup(dir, name), options)).body)
  }

  async access(fh: Buffer, mask: number, options?: CallOptions): Promise<AccessResult> {
    return decode.access((await this.callNfs(Proc.ACCESS, encode.access(fh, mask), options)).body)
  }

  async readlink(fh: Buffer, options?: CallOptions): Promise<ReadlinkResult> {
    return decode.readlink((await this.callNfs(Proc.READLINK, encode.readlink(fh), options)).body)
  }

  async read(fh: Buffer, offset: number | bigint, count: number, options?: CallOptions): Promise<ReadResult> {
    return decode.read((await this.callNfs(Proc.READ, encode.read(fh, offset, count), options)).body)
  }

  async write(fh: Buffer, offset: number | bigint, data: Buffer, stable: number = StableHow.FILE_SYNC, options?: CallOptions): Promise<WriteResult> {
    return decode.write((await this.callNfs(Proc.WRITE, encode.write(fh, offset, data, stable), options)).body)
  }

  async create(dir: Buffer, name: string | Buffer, how: CreateHow = { mode: 'unchecked' }, options?: CallOptions): Promise<DiropResult> {
    return decode.dirop((await this.callNfs(Proc.CREATE, encode.create(dir, name, how), options)).body)
  }

  async mkdir(dir: Buffer, name: string | Buffer, attributes: Sattr3 = {}, options?: CallOptions): Promise<DiropResult> {
    return decode.dirop((await this.callNfs(Proc.MKDIR, encode.mkdir(dir, name, attributes), options)).body)
  }

  async symlink(dir: Buffer, name: string | Buffer, target: string | Buffer, attributes: Sattr3 = {}, options?: CallOptions): Promise<DiropResult> {
    return decode.dirop((await this.callNfs(Proc.SYMLINK, encode.symlink(dir, name, target, attributes), options)).body)
  }

  async mknodFifo(dir: Buffer, name: string | Buffer, options?: CallOptions): Promise<DiropResult> {
    return decode.dirop((await this.callNfs(Proc.MKNOD, encode.mknodFifo(dir, name), options)).body)
  }

  async remove(dir: Buffer, name: string | Buffer, options?: CallOptions): Promise<WccResult> {
    return decode.wcc((await this.callNfs(Proc.REMOVE, encode.remove(dir, name), options)).body)
  }

  async rmdir(dir: Buffer, name: string | Buffer, options?: CallOptions): Promise<WccResult> {
    return decode.wcc((await this.callNfs(Proc.RMDIR, encode.remove(dir, name), options)).body)
  }

  async rename(fromDir: Buffer, fromName: string | Buffer, toDir: Buffer, toName: string | Buffer, options?: CallOptions): Promise<RenameResult> {
    return decode.rename((await this.callNfs(Proc.RENAME, encode.rename(fromDir, fromName, toDir, toName), options)).body)
  }

  async link(fh: Buffer, dir: Buffer, name: string | Buffer, options?: CallOptions): Promise<LinkResult> {
    return decode.link((await this.callNfs(Proc.LINK, encode.link(fh, dir, name), options)).body)
  }

  async readdir(dir: Buffer, cookie: bigint, verifier: Buffer, count: number, options?: CallOptions): Promise<ReaddirResult> {
    return decode.readdir((await this.callNfs(Proc.READDIR, encode.readdir(dir, cookie, verifier, count), options)).body, false)
  }

  async readdirplus(dir: Buffer, cookie: bigint, verifier: Buffer, dircount: number, maxcount: number, options?: CallOptions): Promise<ReaddirResult> {
    const reply = await this.callNfs(Proc.READDIRPLUS, encode.readdirplus(dir, cookie, verifier, dircount, maxcount), options)
    return decode.readdir(reply.body, true)
  }

  async fsstat(fh: Buffer, options?: CallOptions): Promise<FsstatResult> {
    return decode.fsstat((await this.callNfs(Proc.FSSTAT, encode.fsstat(fh), options)).body)
  }

  async fsinfo(fh: Buffer, options?: CallOptions): Promise<FsinfoResult> {
    return decode.fsinfo((await this.callNfs(Proc.FSINFO, encode.fsinfo(fh), options)).body)
  }

  async pathconf(fh: Buffer, options?: CallOptions): Promise<PathconfResult> {
    return decode.pathconf((await this.callNfs(Proc.PATHCONF, encode.pathconf(fh), options)).body)
  }

  async commit(fh: Buffer, offset = 0, count = 0, options?: CallOptions): Promise<CommitResult> {
    return decode.commit((await this.callNfs(Proc.COMMIT, encode.commit(fh, offset, count), options)).body)
  }

  // Conveniences for test setup: each throws when a step does not return OK.

  /** Creates (or reuses) a regular file and writes `data` to it with FILE_SYNC; returns its handle. */
  async writeFile(dir: Buffer, name: string, data: Buffer | string = ''): Promise<Buffer> {
    const created = await this.create(dir, name, { mode: 'unchecked', attributes: { size: 0 } })
    if (created.status !== 'OK') throw new Error(`CREATE ${name} failed with ${created.status}`)
    const handle = created.handle ?? (await this.lookupHandle(dir, name))
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    const chunk = 512 * 1024
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      const written = await this.write(handle, offset, bytes.subarray(offset, offset + chunk), StableHow.FILE_SYNC)
      if (written.status !== 'OK') throw new Error(`WRITE ${name} at ${offset} failed with ${written.status}`)
    }
    return handle
  }

  /** Reads a whole file with READ calls of `chunk` bytes. */
  async readFile(fh: Buffer, chunk = 256 * 1024): Promise<Buffer> {
    const parts: Buffer[] = []
    for (let offset = 0; ; ) {
      const result = await this.read(fh, offset, chunk)
      if (result.status !== 'OK' || result.data === null) throw new Error(`READ at ${offset} failed with ${result.status}`)
      parts.push(result.data)
      offset += result.data.length
      if (result.eof) return Buffer.concat(parts)
      if (result.data.length === 0) throw new Error(`READ at ${offset} returned no data and no eof`)
    }
  }

  async mkdirHandle(dir: Buffer, name: string): Promise<Buffer> {
    const made = await this.mkdir(dir, name)
    if (made.status !== 'OK') throw new Error(`MKDIR ${name} failed with ${made.status}`)
    return made.handle ?? (await this.lookupHandle(dir, name))
  }

  /** Walks a "/"-separated path from `dir` with LOOKUP. */
  async lookupHandle(dir: Buffer, relativePath: string): Promise<Buffer> {
    let handle = dir
    for (const part of relativePath.split('/').filter((p) => p.length > 0)) {
      const found = await this.lookup(handle, part)
      if (found.status !== 'OK' || found.handle === null) throw new Error(`LOOKUP ${part} of ${relativePath} failed with ${found.status}`)
      handle = found.handle
    }
    return handle
  }

  /** Attributes that must be available; throws otherwise. */
  async attributesOf(fh: Buffer): Promise<Fattr3> {
    const result = await this.getattr(fh)
    if (result.status !== 'OK' || result.attributes === null) throw new Error(`GETATTR failed with ${result.status}`)
    return result.attributes
  }

  /** Lists a directory completely with READDIR (or READDIRPLUS) pages of the given sizes. */
  async listAll(dir: Buffer, options: { plus?: boolean; dircount?: number; maxcount?: number } = {}): Promise<{ pages: ReaddirResult[]; entries: DirEntry[] }> {
    const pages: ReaddirResult[] = []
    const entries: DirEntry[] = []
    let cookie = 0n
    let verifier: Buffer = Buffer.alloc(8)
    for (;;) {
      const page = options.plus
        ? await this.readdirplus(dir, cookie, verifier, options.dircount ?? 8192, options.maxcount ?? 32768)
        : await this.readdir(dir, cookie, verifier, options.dircount ?? 8192)
      if (page.status !== 'OK') throw new Error(`READDIR${options.plus ? 'PLUS' : ''} at cookie ${cookie} failed with ${page.status}`)
      pages.push(page)
      entries.push(...page.entries)
      if (page.eof) return { pages, entries }
      if (page.entries.length === 0) throw new Error(`READDIR at cookie ${cookie} returned no entries and no eof`)
      cookie = page.entries[page.entries.length - 1].cookie
      verifier = page.cookieverf!
      if (pages.length > 100_000) throw new Error('READDIR never reached eof')
    }
  }
}
