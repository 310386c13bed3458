// AegisFSAL: the security boundary between NFS clients and storage providers.
//
// Every operation: (1) verifies the handle and the client's right to the export, (2) checks each
// name is one safe component, (3) rejects modifications on read-only volumes, (4) keeps the volume
// within its size_limit, (5) calls the provider, and (6) leaves in the RequestContext what the audit
// trail records. Ownership is squashed: attributes carry no uid/gid from the backend, and a
// SETATTR that would give a file to anyone but the volume's agent is refused.

import type { Logger } from 'pino'
import { RequestContext } from './context.js'
import {
  AccessDenied,
  BadHandle,
  Exists,
  FsalError,
  fromErrno,
  InvalidArgument,
  IsDirectory,
  NotDirectory,
  NotSupported,
  NotSync,
  OutsideVolume,
  PermissionDenied,
  ReadOnly,
  Stale
} from './errors.js'
import type { HandleCodec } from './handle.js'
import { KeyedQueue } from './keyed-queue.js'
import { BlockedName, checkName } from './names.js'
import type { FsalNode } from './node.js'
import type { ReadResult } from '../providers/provider.js'
import type { CreateMode, FileAttributes, FsStat, SetAttributes, StableHow } from './types.js'
import { countedBytes, type Listing, type Volume } from './volume.js'

/** Attributes before and after a change (RFC 1813 wcc_data); either may be unknown. */
export interface Wcc {
  before: FileAttributes | null
  after: FileAttributes | null
}

export interface RenameResult {
  fromWcc: Wcc
  toWcc: Wcc
  /** The object the rename replaced, with the names it still has afterwards, or null. */
  replaced: FileAttributes | null
}

export interface NodeResult {
  node: FsalNode
  attributes: FileAttributes
}

export interface DirectoryPage {
  dir: FsalNode
  attributes: FileAttributes
  parent: FsalNode
  /** Attributes of ".."; only meaningful on a page that starts at cookie 0 or 1. */
  parentAttributes: FileAttributes
  listing: Listing
  /** Attributes of the listing's names: undefined until filled with fillEntries(), null when gone. */
  entries: Array<FileAttributes | null | undefined>
}

export interface CreateArguments {
  how: CreateMode
  /** Exclusive create: the client's 8-byte verifier. */
  verifier?: Buffer
  /** Unchecked and guarded create: the initial attributes. */
  attributes?: SetAttributes
}

// ACCESS3 bits (RFC 1813, section 3.3.4).
const ACCESS_READ = 0x01
const ACCESS_LOOKUP = 0x02
const ACCESS_MODIFY = 0x04
const ACCESS_EXTEND = 0x08
const ACCESS_DELETE = 0x10
const ACCESS_EXECUTE = 0x20

/** Quota charge of a new directory until its real size is known. */
const DIRECTORY_ESTIMATE_BYTES = 4096
const S_ISUID = 0o4000
const S_ISGID = 0o2000

/**
 * Clears set-user-ID, and set-group-ID on anything but a directory. Files on the host belong to
 * the node's own user (often root), so an agent must not be able to make a privileged executable;
 * a directory's set-group-ID bit only decides the group of new entries and stays.
 */
function withoutPrivilegeBits(mode: number, type: FileAttributes['type']): number {
  return mode & ~S_ISUID & ~(type === 'dir' ? 0 : S_ISGID)
}

export class AegisFsal {
  private readonly volumesById = new Map<number, Volume>()
  private readonly volumesByName = new Map<string, Volume>()
  /** Calls that add a name, keyed by directory handle and name (see oneNameAtATime). */
  private readonly nameQueue = new KeyedQueue<string>()

  constructor(
    readonly nodeName: string,
    private readonly handles: HandleCodec,
    volumes: Volume[],
    private readonly logger: Logger
  ) {
    for (const volume of volumes) {
      if (this.volumesById.has(volume.settings.exportId)) {
        throw new Error(`volumes ${volume.name} and ${this.volumesById.get(volume.settings.exportId)!.name} have the same export id; rename one`)
      }
      this.volumesById.set(volume.settings.exportId, volume)
      this.volumesByName.set(volume.name, volume)
    }
  }

  get volumes(): Volume[] {
    return [...this.volumesByName.values()]
  }

  volumeByName(name: string): Volume | undefined {
    return this.volumesByName.get(name)
  }

  /** Returns true when `address` may use the volume's export. */
  clientAllowed(volume: Volume, address: string): boolean {
    return volume.clientAllowed(address)
  }

  /** Returns the handle of a node, encoding it on first use. */
  handleOf(volume: Volume, node: FsalNode): Buffer {
    node.handle ??= this.handles.encode({ exportId: volume.settings.exportId, fileId: node.fileId, generation: node.generation })
    return node.handle
  }

  /**
   * Orders the namespace changes of a volume. Each looks names up, waits for the file system,
   * then updates the node table and the quota from what it looked up. REMOVE, RMDIR and RENAME
   * free bytes and move nodes, so they run alone (`exclusive`): interleaved, they could record a
   * directory loop or free the same bytes twice. CREATE, MKDIR, SYMLINK and LINK only add, and
   * run together. A handle that names no volume runs unordered and fails in resolve().
   */
  private serialized<T>(handle: Buffer, action: () => Promise<T>, exclusive = false): Promise<T> {
    let volume: Volume | undefined
    try {
      volume = this.volumesById.get(this.handles.decode(handle).exportId)
    } catch {
      volume = undefined
    }
    if (volume === undefined) return action()
    return exclusive ? volume.namespaceLock.exclusive(action) : volume.namespaceLock.shared(action)
  }

  /**
   * Runs calls that add the same name to the same directory one after another. They share the
   * namespace lock, and stores without a create-if-absent (object stores, the SeaweedFS filer)
   * would otherwise let two guarded CREATEs or two MKDIRs of one name both succeed.
   */
  private oneNameAtATime<T>(dirHandle: Buffer, rawName: Buffer, action: () => Promise<T>): Promise<T> {
    return this.nameQueue.run(`${dirHandle.toString('base64')}/${rawName.toString('base64')}`, action)
  }

  /** Verifies a client's handle and the client's right to its export; fills ctx.volume and ctx.node. */
  async resolve(ctx: RequestContext, handle: Buffer): Promise<FsalNode> {
    let fields
    try {
      fields = this.handles.decode(handle)
    } catch (error) {
      if (error instanceof BadHandle) ctx.blocked = `forged or altered handle: ${error.message}`
      throw error
    }

    const volume = this.volumesById.get(fields.exportId)
    if (volume === undefined) throw new Stale(`no volume has export id ${fields.exportId}`)
    ctx.volume = volume
    if (ctx.meshPeer === null && !this.clientAllowed(volume, ctx.client)) {
      ctx.blocked = `client ${ctx.client} is not in the allowed_clients of volume ${volume.name}`
      throw new AccessDenied(ctx.blocked)
    }

    const node = await volume.resolve(fields.fileId, fields.generation)
    ctx.node = node
    try {
      ctx.nodeAttributes = await volume.provider.getattr(node)
    } catch (error) {
      if (error instanceof OutsideVolume) {
        ctx.blocked = error.message
        volume.forget(node)
        throw error
      }
      if (!(error instanceof Stale)) throw fromErrno(error, `getattr ${node.path()}`)
      // The object may still exist under another name (a hard link, a rename on the host).
      volume.forget(node)
      if (volume.knownMissing(fields.fileId, fields.generation) || !(await volume.rescan())) throw error
      const found = volume.nodes.get(fields.fileId)
      if (found === undefined || found.generation !== fields.generation) {
        volume.rememberMissing(fields.fileId, fields.generation)
        throw error
      }
      ctx.node = found
      ctx.nodeAttributes = await volume.provider.getattr(found)
      return found
    }
    return node
  }

  private volumeOf(ctx: RequestContext): Volume {
    return ctx.volume!
  }

  private name(ctx: RequestContext, raw: Buffer): string {
    try {
      const name = checkName(raw)
      ctx.name = name
      return name
    } catch (error) {
      if (error instanceof BlockedName) {
        ctx.name = JSON.stringify(raw.toString('latin1'))
        ctx.blocked = error.message
      }
      throw error
    }
  }

  /** Rejects modifications on read-only volumes, and marks one as started for the attribute caches. */
  private requireWritable(ctx: RequestContext): void {
    const volume = this.volumeOf(ctx)
    if (volume.settings.readOnly) throw new ReadOnly(`volume ${volume.name} is read-only`)
    volume.modifications++
  }

  private async directory(ctx: RequestContext, handle: Buffer): Promise<FsalNode> {
    const dir = await this.resolve(ctx, handle)
    if (dir.type !== 'dir') throw new NotDirectory(`${dir.path()} is not a directory`)
    return dir
  }

  /** Current attributes of a node; Stale nodes are dropped from the table. */
  async attributes(volume: Volume, node: FsalNode): Promise<FileAttributes> {
    try {
      return await volume.provider.getattr(node)
    } catch (error) {
      if (error instanceof Stale) volume.forget(node)
      throw fromErrno(error, `getattr ${node.path()}`)
    }
  }

  /** Attributes for a reply after an error: null when they cannot be had. */
  async attributesOrNull(volume: Volume | null, node: FsalNode | null): Promise<FileAttributes | null> {
    if (volume === null || node === null) return null
    try {
      return await volume.provider.getattr(node)
    } catch {
      return null
    }
  }

  async getattr(ctx: RequestContext, handle: Buffer): Promise<FileAttributes> {
    await this.resolve(ctx, handle)
    return ctx.nodeAttributes!
  }

  async setattr(ctx: RequestContext, handle: Buffer, changes: SetAttributes, guardCtime: { sec: number; nsec: number } | null): Promise<Wcc> {
    const node = await this.resolve(ctx, handle)
    const volume = this.volumeOf(ctx)
    this.requireWritable(ctx)
    const before = ctx.nodeAttributes!
    if (guardCtime !== null && (guardCtime.sec !== before.ctimeSec || guardCtime.nsec !== before.ctimeNsec)) {
      throw new NotSync(`ctime of ${node.path()} changed since the client read it`)
    }
    this.checkOwner(volume, changes)
    if (changes.mode !== undefined) changes.mode = withoutPrivilegeBits(changes.mode, before.type)

    const sizeBytes = changes.sizeBytes
    if (sizeBytes !== undefined) {
      if (before.type === 'dir') throw new IsDirectory(`cannot set the size of directory ${node.path()}`)
      if (before.type !== 'file') throw new InvalidArgument(`cannot set the size of ${node.path()}: not a regular file`)
      ctx.length = sizeBytes
      volume.reserveGrowth(node, before.sizeBytes, sizeBytes)
    }

    let after: FileAttributes
    try {
      after = await volume.provider.setattr(node, changes)
    } catch (error) {
      if (sizeBytes !== undefined) volume.settleSize(node, (await this.attributesOrNull(volume, node))?.sizeBytes ?? before.sizeBytes)
      throw fromErrno(error, `setattr ${node.path()}`)
    }
    if (sizeBytes !== undefined) volume.settleSize(node, after.sizeBytes)
    return { before, after }
  }

  /** Ownership can only be "changed" to what it already shows: the volume's agent uid and gid. */
  private checkOwner(volume: Volume, changes: SetAttributes): void {
    if (changes.uid !== undefined && changes.uid !== volume.settings.uid) {
      throw new PermissionDenied(`volume ${volume.name} files are owned by uid ${volume.settings.uid}; cannot change the owner to ${changes.uid}`)
    }
    if (changes.gid !== undefined && changes.gid !== volume.settings.gid) {
      throw new PermissionDenied(`volume ${volume.name} files belong to gid ${volume.settings.gid}; cannot change the group to ${changes.gid}`)
    }
  }

  async lookup(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer): Promise<NodeResult & { dirAttributes: FileAttributes }> {
    const dir = await this.directory(ctx, dirHandle)
    const name = this.name(ctx, rawName)
    const volume = this.volumeOf(ctx)
    const attributes = await this.lookupIn(volume, dir, name)
    const node = volume.nodeFor(dir, name, attributes)
    return { node, attributes, dirAttributes: ctx.nodeAttributes! }
  }

  private async lookupIn(volume: Volume, dir: FsalNode, name: string): Promise<FileAttributes> {
    try {
      return await volume.provider.lookup(dir, name)
    } catch (error) {
      throw fromErrno(error, `lookup ${name}`)
    }
  }

  async access(ctx: RequestContext, handle: Buffer, requested: number): Promise<{ attributes: FileAttributes; granted: number }> {
    const attributes = await this.getattr(ctx, handle)
    const volume = this.volumeOf(ctx)
    // Every caller is squashed to the owner, so the owner bits decide.
    const owner = (attributes.mode >> 6) & 7
    let granted = 0
    if (owner & 4) granted |= ACCESS_READ
    if (attributes.type === 'dir') {
      if (owner & 1) granted |= ACCESS_LOOKUP
      if (owner & 2 && !volume.settings.readOnly) granted |= ACCESS_MODIFY | ACCESS_EXTEND | ACCESS_DELETE
    } else {
      if (owner & 1) granted |= ACCESS_EXECUTE
      if (owner & 2 && !volume.settings.readOnly) granted |= ACCESS_MODIFY | ACCESS_EXTEND
    }
    return { attributes, granted: granted & requested }
  }

  async readlink(ctx: RequestContext, handle: Buffer): Promise<{ attributes: FileAttributes; target: Buffer }> {
    const node = await this.resolve(ctx, handle)
    const volume = this.volumeOf(ctx)
    if (node.type !== 'symlink') throw new InvalidArgument(`${node.path()} is not a symbolic link`)
    const target = await volume.provider.readlink(node)
    return { attributes: await this.attributes(volume, node), target }
  }

  async read(ctx: RequestContext, handle: Buffer, offset: number, count: number): Promise<ReadResult> {
    const node = await this.resolve(ctx, handle)
    ctx.offset = offset
    ctx.length = count
    if (node.type === 'dir') throw new IsDirectory(`${node.path()} is a directory`)
    if (node.type !== 'file') throw new InvalidArgument(`${node.path()} is not a regular file`)
    const volume = this.volumeOf(ctx)
    try {
      const result = await volume.provider.read(node, offset, count)
      ctx.bytes = result.data.length
      return result
    } catch (error) {
      throw this.staleCheck(volume, node, error, 'read')
    }
  }

  private staleCheck(volume: Volume, node: FsalNode, error: unknown, what: string): unknown {
    if (error instanceof Stale) volume.forget(node)
    return fromErrno(error, `${what} ${node.path()}`)
  }

  async write(ctx: RequestContext, handle: Buffer, offset: number, data: Buffer, stable: StableHow): Promise<Wcc & { count: number; committed: StableHow }> {
    const node = await this.resolve(ctx, handle)
    ctx.offset = offset
    ctx.length = data.length
    this.requireWritable(ctx)
    if (node.type === 'dir') throw new IsDirectory(`${node.path()} is a directory`)
    if (node.type !== 'file') throw new InvalidArgument(`${node.path()} is not a regular file`)

    const volume = this.volumeOf(ctx)
    const before = ctx.nodeAttributes!
    volume.reserveGrowth(node, before.sizeBytes, offset + data.length)
    node.pendingWrites++
    let result
    try {
      result = await volume.provider.write(node, offset, data, stable)
    } catch (error) {
      node.pendingWrites--
      volume.settleSize(node, (await this.attributesOrNull(volume, node))?.sizeBytes ?? before.sizeBytes)
      throw this.staleCheck(volume, node, error, 'write')
    }
    node.pendingWrites--
    volume.settleSize(node, result.attributes.sizeBytes)
    ctx.bytes = result.count
    return { before, after: result.attributes, count: result.count, committed: result.committed }
  }

  async commit(ctx: RequestContext, handle: Buffer): Promise<Wcc> {
    const node = await this.resolve(ctx, handle)
    const volume = this.volumeOf(ctx)
    const before = ctx.nodeAttributes!
    const after = await volume.provider.commit(node)
    return { before, after }
  }

  async create(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, args: CreateArguments): Promise<NodeResult & { dirWcc: Wcc }> {
    return this.serialized(dirHandle, () => this.oneNameAtATime(dirHandle, rawName, () => this.createSerialized(ctx, dirHandle, rawName, args)))
  }

  private async createSerialized(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, args: CreateArguments): Promise<NodeResult & { dirWcc: Wcc }> {
    const dir = await this.directory(ctx, dirHandle)
    const name = this.name(ctx, rawName)
    this.requireWritable(ctx)
    const volume = this.volumeOf(ctx)
    const dirBefore = ctx.nodeAttributes!
    const initial = args.attributes ?? {}
    this.checkOwner(volume, initial)
    const mode = args.how === 'exclusive' ? 0o600 : withoutPrivilegeBits(initial.mode ?? 0o644, 'file')

    // A CREATE that sets a size reserves those bytes before the file exists, so that a rejected
    // request leaves no file behind. They become the file's own reservation below.
    let heldBytes = args.how !== 'exclusive' ? (initial.sizeBytes ?? 0) : 0
    if (heldBytes > 0 && args.how === 'unchecked') {
      // An unchecked CREATE of an existing file keeps it; only the growth past its size is new.
      const existing = await volume.provider.lookup(dir, name).catch(() => null)
      if (existing !== null && existing.type === 'file') heldBytes = Math.max(0, heldBytes - existing.sizeBytes)
    }
    volume.holdBytes(heldBytes)
    let attributes: FileAttributes
    try {
      attributes = await volume.provider.create(dir, name, mode, args.how)
    } catch (error) {
      volume.releaseBytes(heldBytes)
      const converted = fromErrno(error, `create ${name}`)
      if (!(converted instanceof FsalError && converted.code === 'EXIST' && args.how === 'exclusive')) throw converted
      attributes = await this.exclusiveRetransmission(volume, dir, name, args.verifier!, converted)
    }
    volume.releaseBytes(heldBytes)
    volume.touched(dir)
    const node = volume.nodeFor(dir, name, attributes)

    if (args.how === 'exclusive') {
      // The verifier is kept in the file's atime and mtime seconds, so that a retransmitted
      // exclusive CREATE can be distinguished from a second client's.
      attributes = await volume.provider.setattr(node, {
        atime: { kind: 'client', sec: args.verifier!.readUInt32BE(0), nsec: 0 },
        mtime: { kind: 'client', sec: args.verifier!.readUInt32BE(4), nsec: 0 }
      })
    } else if (initial.sizeBytes !== undefined || initial.atime !== undefined || initial.mtime !== undefined) {
      const changes: SetAttributes = { atime: initial.atime, mtime: initial.mtime }
      if (initial.sizeBytes !== undefined) {
        volume.reserveGrowth(node, attributes.sizeBytes, initial.sizeBytes)
        changes.sizeBytes = initial.sizeBytes
      }
      attributes = await volume.provider.setattr(node, changes)
      volume.settleSize(node, attributes.sizeBytes)
    }
    return { node, attributes, dirWcc: { before: dirBefore, after: await this.attributes(volume, dir) } }
  }

  private async exclusiveRetransmission(volume: Volume, dir: FsalNode, name: string, verifier: Buffer, exists: unknown): Promise<FileAttributes> {
    const attributes = await this.lookupIn(volume, dir, name)
    const sameVerifier = attributes.type === 'file' && attributes.atimeSec === verifier.readUInt32BE(0) && attributes.mtimeSec === verifier.readUInt32BE(4)
    if (!sameVerifier) throw exists
    return attributes
  }

  async mkdir(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, initial: SetAttributes): Promise<NodeResult & { dirWcc: Wcc }> {
    return this.serialized(dirHandle, () => this.oneNameAtATime(dirHandle, rawName, () => this.mkdirSerialized(ctx, dirHandle, rawName, initial)))
  }

  private async mkdirSerialized(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, initial: SetAttributes): Promise<NodeResult & { dirWcc: Wcc }> {
    const dir = await this.directory(ctx, dirHandle)
    const name = this.name(ctx, rawName)
    this.requireWritable(ctx)
    const volume = this.volumeOf(ctx)
    this.checkOwner(volume, initial)
    const dirBefore = ctx.nodeAttributes!
    // Held before the directory exists, then replaced by the size it really has.
    volume.holdBytes(DIRECTORY_ESTIMATE_BYTES)
    let attributes: FileAttributes
    try {
      attributes = await volume.provider.mkdir(dir, name, withoutPrivilegeBits(initial.mode ?? 0o755, 'dir'))
    } finally {
      volume.releaseBytes(DIRECTORY_ESTIMATE_BYTES)
    }
    volume.chargeBytes(countedBytes(attributes))
    volume.touched(dir)
    const node = volume.nodeFor(dir, name, attributes)
    node.chargedBytes = countedBytes(attributes)
    if (initial.atime !== undefined || initial.mtime !== undefined) {
      attributes = await volume.provider.setattr(node, { atime: initial.atime, mtime: initial.mtime })
    }
    return { node, attributes, dirWcc: { before: dirBefore, after: await this.attributes(volume, dir) } }
  }

  async symlink(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, target: Buffer, initial: SetAttributes): Promise<NodeResult & { dirWcc: Wcc }> {
    return this.serialized(dirHandle, () => this.oneNameAtATime(dirHandle, rawName, () => this.symlinkSerialized(ctx, dirHandle, rawName, target, initial)))
  }

  private async symlinkSerialized(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, target: Buffer, initial: SetAttributes): Promise<NodeResult & { dirWcc: Wcc }> {
    const dir = await this.directory(ctx, dirHandle)
    const name = this.name(ctx, rawName)
    this.requireWritable(ctx)
    const volume = this.volumeOf(ctx)
    this.checkOwner(volume, initial)
    if (target.length === 0 || target.includes(0)) throw new InvalidArgument('symbolic link target must be non-empty and contain no NUL byte')
    ctx.target = target.toString('utf8')
    const dirBefore = ctx.nodeAttributes!
    volume.holdBytes(target.length)
    let attributes: FileAttributes
    try {
      attributes = await volume.provider.symlink(dir, name, target, initial.mode ?? 0o777)
    } finally {
      volume.releaseBytes(target.length)
    }
    volume.chargeBytes(countedBytes(attributes))
    volume.touched(dir)
    const node = volume.nodeFor(dir, name, attributes)
    return { node, attributes, dirWcc: { before: dirBefore, after: await this.attributes(volume, dir) } }
  }

  async mknod(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer): Promise<never> {
    await this.directory(ctx, dirHandle)
    this.name(ctx, rawName)
    this.requireWritable(ctx)
    throw new NotSupported('MKNOD is not supported: volumes hold only files, directories and symbolic links')
  }

  async remove(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, directory: boolean): Promise<Wcc & { removed: FileAttributes }> {
    return this.serialized(dirHandle, () => this.removeSerialized(ctx, dirHandle, rawName, directory), true)
  }

  private async removeSerialized(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer, directory: boolean): Promise<Wcc & { removed: FileAttributes }> {
    const dir = await this.directory(ctx, dirHandle)
    const name = this.name(ctx, rawName)
    this.requireWritable(ctx)
    const volume = this.volumeOf(ctx)
    const before = ctx.nodeAttributes!
    const removed = directory ? await volume.provider.rmdir(dir, name) : await volume.provider.remove(dir, name)
    volume.touched(dir)

    const node = volume.nodes.get(removed.fileId)
    volume.released(node, removed)
    if (node !== undefined && (removed.nlink === 0 || removed.type === 'dir')) volume.forget(node)
    return { before, after: await this.attributes(volume, dir), removed }
  }

  async rename(ctx: RequestContext, fromHandle: Buffer, fromRaw: Buffer, toHandle: Buffer, toRaw: Buffer): Promise<RenameResult> {
    return this.serialized(fromHandle, () => this.renameSerialized(ctx, fromHandle, fromRaw, toHandle, toRaw), true)
  }

  private async renameSerialized(ctx: RequestContext, fromHandle: Buffer, fromRaw: Buffer, toHandle: Buffer, toRaw: Buffer): Promise<RenameResult> {
    const fromDir = await this.directory(ctx, fromHandle)
    const fromName = this.name(ctx, fromRaw)
    const volume = this.volumeOf(ctx)
    const { dir: toDir, name: toName } = await this.secondEntry(ctx, toHandle, toRaw)
    this.requireWritable(ctx)

    const fromBefore = ctx.nodeAttributes!
    const toBefore = fromDir === toDir ? fromBefore : await this.attributes(volume, toDir)
    const moved = await this.lookupIn(volume, fromDir, fromName)
    const replaced = await volume.provider.rename(fromDir, fromName, toDir, toName)
    volume.touched(fromDir)
    volume.touched(toDir)

    if (replaced !== null && replaced.fileId !== moved.fileId) {
      const replacedNode = volume.nodes.get(replaced.fileId)
      volume.released(replacedNode, replaced)
      if (replacedNode !== undefined && (replaced.nlink === 0 || replaced.type === 'dir')) volume.forget(replacedNode)
    }
    // The object now at the target is the one that moved, unless the host changed the directory meanwhile.
    const arrived = await volume.provider.lookup(toDir, toName).catch(() => null)
    if (arrived !== null && arrived.fileId === moved.fileId && arrived.generation === moved.generation) {
      volume.nodeFor(toDir, toName, arrived)
    } else {
      const movedNode = volume.nodes.get(moved.fileId)
      if (movedNode !== undefined) volume.forget(movedNode)
    }

    const fromAfter = await this.attributes(volume, fromDir)
    const toAfter = fromDir === toDir ? fromAfter : await this.attributes(volume, toDir)
    return { fromWcc: { before: fromBefore, after: fromAfter }, toWcc: { before: toBefore, after: toAfter }, replaced }
  }

  /**
   * Resolves the second directory entry of RENAME and LINK. Its target path and any refusal (a
   * bad name, a forged handle, another volume) are recorded in the request's own context, so the
   * audit trail shows them whether or not this throws.
   */
  private async secondEntry(ctx: RequestContext, dirHandle: Buffer, rawName: Buffer): Promise<{ dir: FsalNode; name: string }> {
    const second = new RequestContext(ctx.client, ctx.uid, ctx.gid, ctx.procedure, ctx.startedAt)
    second.meshPeer = ctx.meshPeer
    try {
      const dir = await this.directory(second, dirHandle)
      const name = this.name(second, rawName)
      // Rename and link stay inside one volume; anything else is an attempt to move data across.
      if (second.volume !== ctx.volume) {
        second.blocked = `cross-volume operation from ${ctx.volume?.name} to ${second.volume?.name}`
        throw new FsalError('XDEV', second.blocked)
      }
      return { dir, name }
    } finally {
      ctx.target = second.path() ?? second.name
      if (second.blocked !== null) ctx.blocked = second.blocked
    }
  }

  async link(ctx: RequestContext, handle: Buffer, dirHandle: Buffer, rawName: Buffer): Promise<{ attributes: FileAttributes; dirWcc: Wcc }> {
    return this.serialized(handle, () => this.oneNameAtATime(dirHandle, rawName, () => this.linkSerialized(ctx, handle, dirHandle, rawName)))
  }

  private async linkSerialized(ctx: RequestContext, handle: Buffer, dirHandle: Buffer, rawName: Buffer): Promise<{ attributes: FileAttributes; dirWcc: Wcc }> {
    const node = await this.resolve(ctx, handle)
    const volume = this.volumeOf(ctx)
    const { dir, name } = await this.secondEntry(ctx, dirHandle, rawName)
    this.requireWritable(ctx)
    if (node.type === 'dir') throw new IsDirectory(`cannot hard-link directory ${node.path()}`)

    const dirBefore = await this.attributes(volume, dir)
    const attributes = await volume.provider.link(node, dir, name)
    volume.touched(dir)
    return { attributes, dirWcc: { before: dirBefore, after: await this.attributes(volume, dir) } }
  }

  /**
   * Starts or continues a directory listing. Entry i of the listing is "." for 0, ".." for 1 and
   * listing.names[i - 2] after that; `entries` has the attributes of the names (null for a name
   * removed since the listing was taken), and entries are turned into nodes with entryNode().
   */
  async readdir(ctx: RequestContext, dirHandle: Buffer, cookie: number, verifier: Buffer): Promise<DirectoryPage> {
    const dir = await this.directory(ctx, dirHandle)
    const volume = this.volumeOf(ctx)
    const attributes = ctx.nodeAttributes!
    const listing = await volume.listing(dir, attributes, cookie, verifier)
    const parent = dir.parent ?? dir
    // ".." is entry 1, so pages after the first do not need its attributes.
    const parentAttributes = parent === dir || cookie > 1 ? attributes : await this.attributes(volume, parent)
    const entries = volume.entriesForPage(listing)
    return { dir, attributes, parent, parentAttributes, listing, entries }
  }

  /** Stats the names of a listing from `start`, up to `count` of them, that are not filled yet. */
  fillEntries(volume: Volume, page: DirectoryPage, start: number, count: number): Promise<void> {
    return volume.fillEntries(page.dir, page.listing, page.entries, start, count)
  }

  /** Returns the node of entry `index` of a listing, creating it in the node table if needed. */
  entryNode(volume: Volume, dir: FsalNode, listing: Listing, index: number, attributes: FileAttributes): FsalNode {
    const cached = listing.entryNodes[index]
    if (cached !== undefined && cached.fileId === attributes.fileId && cached.generation === attributes.generation && cached.parent === dir) return cached
    const node = volume.nodeFor(dir, listing.names[index], attributes)
    listing.entryNodes[index] = node
    return node
  }

  /** FSSTAT: the volume's size_limit and usage when it has a limit, the backend's figures otherwise. */
  async fsstat(ctx: RequestContext, handle: Buffer): Promise<{ attributes: FileAttributes; stat: FsStat }> {
    const attributes = await this.getattr(ctx, handle)
    const volume = this.volumeOf(ctx)
    const stat = await volume.provider.fsstat()
    const limit = volume.settings.sizeLimitBytes
    if (limit !== null) {
      const free = Math.max(0, Math.min(limit - volume.usedBytes, stat.availableBytes))
      stat.totalBytes = limit
      stat.freeBytes = free
      stat.availableBytes = volume.settings.readOnly ? 0 : free
    }
    return { attributes, stat }
  }
}
