// SEAL provider: a volume that lives on another node. Each operation becomes a signed request to
// the owner, which checks it against its policies and runs it through its own AegisFSAL; this
// node's AegisFSAL still checks names, read-only and handles before anything leaves.
//
// Objects keep the owner's file ids, and each node this side remembers the owner's handle for
// it. The root is the exception: its file id here is a fixed value, so the volume opens (and its
// handles stay valid) while the owner is unreachable. A node whose handle is unknown, after a
// restart, is found again by looking its path up from the root.

import type { Logger } from 'pino'
import { NotFound, Stale } from '../../fsal/errors.js'
import type { FsalNode } from '../../fsal/node.js'
import { FileAttributes, type CreateMode, type FsStat, type SetAttributes, type StableHow } from '../../fsal/types.js'
import type { SealRequest } from '../../mesh/envelope.js'
import { EnvelopeRefused, RemoteUnavailable, type RemoteReply } from '../../mesh/seal-client.js'
import { decodeAttributes } from '../../mesh/wire.js'
import type { ReadResult, ScanVisitor, StorageProvider, WriteResult } from '../provider.js'

/** File id of the root on this side: above any inode number, and below 2^53 for handles. */
export const SEAL_ROOT_FILE_ID = Number.MAX_SAFE_INTEGER
/** How long attributes from the owner are reused, like an NFS client's attribute cache. */
const ATTRIBUTES_TTL_MS = 1_000
/** Names per remote READDIR page. */
const READDIR_PAGE = 1024
const LISTINGS_KEPT = 64
/** At most one warning per interval about an unreachable or refusing owner, so a busy client cannot flood the log. */
const WARNING_INTERVAL_MS = 10_000

export interface SealCaller {
  call(peerId: string, request: SealRequest): Promise<RemoteReply>
}

export interface SealProviderOptions {
  caller: SealCaller
  /** Returns the owner's peer id; throws when the owner is not known yet. */
  owner: () => string
  remoteVolume: string
  logger: Logger
}

interface Known {
  generation: number
  handle: Buffer
  attributes: FileAttributes | null
  fetchedAt: number
}

interface Entry {
  h: Uint8Array
  a: unknown
}

function bytesOf(value: unknown): Buffer {
  if (!(value instanceof Uint8Array)) throw new Stale('the owner sent no handle')
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

export class SealProvider implements StorageProvider {
  readonly kind = 'seal'
  readonly directoryTimesTrackEntries = false
  private readonly known = new Map<number, Known>()
  private rootFileId = -1
  private rootGeneration = 0
  private rootAttributes: FileAttributes | null = null
  private rootFetchedAt = 0
  /** Entries of recent listings by directory file id, so that READDIRPLUS costs no lookups. */
  private readonly listed = new Map<number, { at: number; entries: Map<string, FileAttributes | null> }>()

  private lastWarningAt = 0

  constructor(private readonly options: SealProviderOptions) {}

  private async call(request: Omit<SealRequest, 'volume'>): Promise<RemoteReply> {
    try {
      return await this.options.caller.call(this.options.owner(), { ...request, volume: this.options.remoteVolume })
    } catch (error) {
      // The NFS client sees only IO or ACCES, so the reason goes to the log.
      if (error instanceof RemoteUnavailable || error instanceof EnvelopeRefused) this.warn(request.op, error)
      throw error
    }
  }

  private warn(op: string, error: Error): void {
    const now = Date.now()
    if (now - this.lastWarningAt < WARNING_INTERVAL_MS) return
    this.lastWarningAt = now
    this.options.logger.warn({ op, remoteVolume: this.options.remoteVolume, reason: error.message }, `seal volume request failed: ${error.message}`)
  }

  /** Translates the owner's attributes: the root gets its fixed file id on this side. */
  private local(attributes: FileAttributes): FileAttributes {
    if (attributes.fileId === this.rootFileId && attributes.generation === this.rootGeneration) {
      attributes.fileId = SEAL_ROOT_FILE_ID
      attributes.generation = 0
    }
    return attributes
  }

  /** Records an entry from the owner and returns its attributes. */
  private remember(entry: Entry): FileAttributes {
    const attributes = decodeAttributes(entry.a)
    if (!(attributes.fileId === this.rootFileId && attributes.generation === this.rootGeneration)) {
      this.known.set(attributes.fileId, { generation: attributes.generation, handle: bytesOf(entry.h), attributes, fetchedAt: Date.now() })
    }
    return this.local(attributes)
  }

  /** Updates the cached attributes of a node after an operation returned them. */
  private refreshed(node: FsalNode, wire: unknown): FileAttributes {
    const attributes = this.local(decodeAttributes(wire))
    this.cache(node, attributes)
    return attributes
  }

  private cache(node: FsalNode, attributes: FileAttributes | null): void {
    if (node.parent === null) {
      this.rootAttributes = attributes
      this.rootFetchedAt = Date.now()
      return
    }
    const known = this.known.get(node.fileId)
    if (known !== undefined) {
      known.attributes = attributes
      known.fetchedAt = Date.now()
    }
  }

  /** Drops cached attributes of a directory whose entries change. */
  private changed(dir: FsalNode): void {
    this.cache(dir, null)
    this.listed.delete(dir.fileId)
  }

  /** Returns the owner's handle for a node (undefined for the root), looking its path up if unknown. */
  private async handleOf(node: FsalNode): Promise<Buffer | undefined> {
    if (node.parent === null) return undefined
    const known = this.known.get(node.fileId)
    if (known !== undefined && known.generation === node.generation) return known.handle
    const parentHandle = await this.handleOf(node.parent)
    const reply = await this.call({ op: 'lookup', handle: parentHandle, args: { name: node.name } }).catch((error: unknown) => {
      throw error instanceof NotFound ? new Stale(`${node.path()} is gone on the owner`) : error
    })
    const attributes = this.remember(reply.result as Entry)
    if (attributes.fileId !== node.fileId || attributes.generation !== node.generation) throw new Stale(`${node.path()} is another object on the owner now`)
    return this.known.get(node.fileId)!.handle
  }

  async open(): Promise<FileAttributes> {
    const attributes = new FileAttributes()
    attributes.type = 'dir'
    attributes.mode = 0o755
    attributes.nlink = 2
    attributes.fileId = SEAL_ROOT_FILE_ID
    return attributes
  }

  async close(): Promise<void> {
    this.known.clear()
    this.listed.clear()
  }

  async getattr(node: FsalNode): Promise<FileAttributes> {
    const now = Date.now()
    if (node.parent === null) {
      if (this.rootAttributes !== null && now - this.rootFetchedAt < ATTRIBUTES_TTL_MS) return this.rootAttributes
      const reply = await this.call({ op: 'getattr', args: {} })
      const attributes = decodeAttributes((reply.result as Entry).a)
      this.rootFileId = attributes.fileId
      this.rootGeneration = attributes.generation
      return this.refreshed(node, (reply.result as Entry).a)
    }
    const known = this.known.get(node.fileId)
    if (known?.attributes && known.generation === node.generation && now - known.fetchedAt < ATTRIBUTES_TTL_MS) return known.attributes
    const reply = await this.call({ op: 'getattr', handle: await this.handleOf(node), args: {} })
    return this.remember(reply.result as Entry)
  }

  async lookup(dir: FsalNode, name: string): Promise<FileAttributes> {
    const reply = await this.call({ op: 'lookup', handle: await this.handleOf(dir), args: { name } })
    return this.remember(reply.result as Entry)
  }

  async readdir(dir: FsalNode): Promise<string[]> {
    const handle = await this.handleOf(dir)
    const names: string[] = []
    const entries = new Map<string, FileAttributes | null>()
    let verifier: Uint8Array | undefined
    for (let attempt = 0; ; ) {
      const reply = await this.call({ op: 'readdir', handle, args: { cookie: names.length, count: READDIR_PAGE, ...(verifier ? { verifier } : {}) } }).catch((error: unknown) => {
        // The owner dropped the listing between pages: start over, a few times at most.
        if ((error as { code?: string }).code === 'BAD_COOKIE' && attempt++ < 3) return null
        throw error
      })
      if (reply === null) {
        names.length = 0
        entries.clear()
        verifier = undefined
        continue
      }
      const page = reply.result as { v: Uint8Array; names: string[]; entries: Array<Entry | null>; eof: boolean }
      verifier = page.v
      page.names.forEach((name, index) => {
        names.push(name)
        const entry = page.entries[index]
        entries.set(name, entry ? this.remember(entry) : null)
      })
      if (page.eof || page.names.length === 0) break
    }
    this.listed.set(dir.fileId, { at: Date.now(), entries })
    if (this.listed.size > LISTINGS_KEPT) this.listed.delete(this.listed.keys().next().value as number)
    return names
  }

  async lookupAll(dir: FsalNode, names: readonly string[]): Promise<Array<FileAttributes | null>> {
    const listing = this.listed.get(dir.fileId)
    const fresh = listing !== undefined && Date.now() - listing.at < ATTRIBUTES_TTL_MS ? listing.entries : null
    return Promise.all(
      names.map(async (name) => {
        const cached = fresh?.get(name)
        if (cached !== undefined) return cached
        return this.lookup(dir, name).catch((error: unknown) => {
          if (error instanceof NotFound || (error as { code?: string }).code === 'NOENT') return null
          throw error
        })
      })
    )
  }

  async read(node: FsalNode, offset: number, length: number): Promise<ReadResult> {
    const reply = await this.call({ op: 'read_at', handle: await this.handleOf(node), args: { offset, length } })
    const result = reply.result as { eof: boolean; a: unknown }
    return { data: reply.data ?? Buffer.alloc(0), eof: result.eof, attributes: this.refreshed(node, result.a), release: null }
  }

  async write(node: FsalNode, offset: number, data: Buffer, stable: StableHow): Promise<WriteResult> {
    const reply = await this.call({ op: 'write_at', handle: await this.handleOf(node), args: { offset, stable }, data })
    const result = reply.result as { count: number; committed: StableHow; a: unknown }
    return { count: result.count, committed: result.committed, attributes: this.refreshed(node, result.a) }
  }

  async commit(node: FsalNode): Promise<FileAttributes> {
    const reply = await this.call({ op: 'commit', handle: await this.handleOf(node), args: {} })
    return this.refreshed(node, (reply.result as { a: unknown }).a)
  }

  /**
   * Exclusive creates travel as guarded ones: this node's AegisFSAL keeps the verifier in the
   * file's times and recognizes a retransmission itself.
   */
  async create(dir: FsalNode, name: string, mode: number, how: CreateMode): Promise<FileAttributes> {
    const reply = await this.call({ op: 'create', handle: await this.handleOf(dir), args: { name, mode, how: how === 'exclusive' ? 'guarded' : how } })
    this.changed(dir)
    return this.remember(reply.result as Entry)
  }

  async mkdir(dir: FsalNode, name: string, mode: number): Promise<FileAttributes> {
    const reply = await this.call({ op: 'mkdir', handle: await this.handleOf(dir), args: { name, mode } })
    this.changed(dir)
    return this.remember(reply.result as Entry)
  }

  async symlink(dir: FsalNode, name: string, target: Buffer, mode: number): Promise<FileAttributes> {
    const reply = await this.call({ op: 'symlink', handle: await this.handleOf(dir), args: { name, mode, target } })
    this.changed(dir)
    return this.remember(reply.result as Entry)
  }

  async readlink(node: FsalNode): Promise<Buffer> {
    const reply = await this.call({ op: 'readlink', handle: await this.handleOf(node), args: {} })
    return reply.data ?? Buffer.alloc(0)
  }

  async link(node: FsalNode, dir: FsalNode, name: string): Promise<FileAttributes> {
    const reply = await this.call({ op: 'link', handle: await this.handleOf(node), args: { toName: name, ...(await this.target(dir)) } })
    this.changed(dir)
    return this.refreshed(node, (reply.result as { a: unknown }).a)
  }

  async remove(dir: FsalNode, name: string): Promise<FileAttributes> {
    return this.removeEntry('remove', dir, name)
  }

  async rmdir(dir: FsalNode, name: string): Promise<FileAttributes> {
    return this.removeEntry('rmdir', dir, name)
  }

  private async removeEntry(op: 'remove' | 'rmdir', dir: FsalNode, name: string): Promise<FileAttributes> {
    const reply = await this.call({ op, handle: await this.handleOf(dir), args: { name } })
    this.changed(dir)
    return this.local(decodeAttributes((reply.result as { a: unknown }).a))
  }

  async rename(fromDir: FsalNode, fromName: string, toDir: FsalNode, toName: string): Promise<FileAttributes | null> {
    const reply = await this.call({
      op: 'rename',
      handle: await this.handleOf(fromDir),
      args: { name: fromName, toName, ...(await this.target(toDir)) }
    })
    this.changed(fromDir)
    this.changed(toDir)
    const replaced = (reply.result as { a: unknown }).a
    return replaced === null ? null : this.local(decodeAttributes(replaced))
  }

  /** Returns the target directory argument of RENAME and LINK, empty for the root. */
  private async target(dir: FsalNode): Promise<{ toHandle?: Buffer }> {
    const handle = await this.handleOf(dir)
    return handle === undefined ? {} : { toHandle: handle }
  }

  async setattr(node: FsalNode, changes: SetAttributes): Promise<FileAttributes> {
    const wire: Record<string, unknown> = {}
    if (changes.mode !== undefined) wire.mode = changes.mode
    if (changes.sizeBytes !== undefined) wire.sizeBytes = changes.sizeBytes
    if (changes.atime !== undefined) wire.atime = changes.atime
    if (changes.mtime !== undefined) wire.mtime = changes.mtime
    const reply = await this.call({ op: 'setattr', handle: await this.handleOf(node), args: { changes: wire } })
    return this.refreshed(node, (reply.result as { a: unknown }).a)
  }

  async fsstat(): Promise<FsStat> {
    const reply = await this.call({ op: 'fsstat', args: {} })
    return reply.result as FsStat
  }

  /**
   * Walks the remote volume breadth first; used to find the nodes of handles after a restart.
   * NOTE: a large remote volume costs one READDIR round trip per directory page here.
   */
  async scan(root: FsalNode, visit: ScanVisitor): Promise<void> {
    const queue: FsalNode[] = [root]
    while (queue.length > 0) {
      const dir = queue.shift()!
      const names = await this.readdir(dir)
      const attributes = await this.lookupAll(dir, names)
      names.forEach((name, index) => {
        const entry = attributes[index]
        if (entry === null) return
        const node = visit(dir, name, entry)
        if (entry.type === 'dir') queue.push(node)
      })
    }
  }

  forget(node: FsalNode): void {
    this.known.delete(node.fileId)
    this.listed.delete(node.fileId)
  }
}
