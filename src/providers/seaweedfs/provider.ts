// SeaweedFS provider: a volume is a directory of a SeaweedFS filer, reached over the filer's HTTP
// API. Each node maps to the filer path rootPath + node.path(). Objects keep the filer's inode as
// their file id (it survives overwrite and rename) and their creation second as generation.
//
// Writes land on the filer before the request returns, so every write reports FILE_SYNC and
// commit only returns attributes.

import { createHash, randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { Exists, FsalError, InvalidArgument, IsDirectory, NameTooLong, NotDirectory, NotEmpty, NotFound, NotSupported, Stale } from '../../fsal/errors.js'
import { KeyedQueue } from '../../fsal/keyed-queue.js'
import type { FsalNode } from '../../fsal/node.js'
import type { CreateMode, FileAttributes, FsStat, SetAttributes, SetTime, StableHow } from '../../fsal/types.js'
import type { ReadResult, ScanVisitor, StorageProvider, WriteResult } from '../provider.js'
import { attributesOf, CLIENT_TIMES_HEADER, parseFilerJson, type FilerEntry, type FilerListing } from './entry.js'
import { FilerClient, type FilerRequest, type FilerResponse } from './filer-client.js'

/** File id of the root when the filer reports inode 0 for it (older filers). */
export const SEAWEEDFS_ROOT_FILE_ID = 1
/** Names per listing request. */
const DEFAULT_LISTING_PAGE_SIZE = 1024
/** Names up to which lookupAll sends one metadata request per name instead of listing the directory. */
const LOOKUP_ONE_BY_ONE_MAX = 4
/**
 * Part size of a rewrite (see rewrite): a file up to this size is rewritten from memory, a larger
 * one is streamed in parts of this size through a copy, so memory use stays bounded.
 */
const DEFAULT_REWRITE_PART_BYTES = 8 * 1024 * 1024
/** How long a metadata response of the filer is reused by default (see fetchEntry). */
const DEFAULT_ENTRY_CACHE_MS = 1000
/** Entries of the metadata cache before it is emptied, which bounds its memory. */
const ENTRY_CACHE_MAX_ENTRIES = 10_000
/** Filer directory for the copies that a streamed rewrite keeps until it completes. */
const REWRITE_COPY_DIR = '/.aegis-node/rewrite'
/** Reported by fsstat, because the filer's HTTP API does not expose its capacity. */
const REPORTED_CAPACITY_BYTES = 2 ** 50
const REPORTED_FILES = 2 ** 40

export interface SeaweedFsProviderOptions {
  /** Base URL of the filer, such as http://127.0.0.1:8888. */
  filerUrl: string
  /** Filer directory of the volume, such as /volumes/<name>; created by open() when missing. */
  rootPath: string
  logger: Logger
  /** Limit for one operation against the filer, retries included (default 10 s). */
  timeoutMs?: number
  /** Extra attempts for reads, metadata and listings after a connection error or a 5xx (default 3). */
  retries?: number
  /** Names per listing request (default 1024). */
  listingPageSize?: number
  /** SeaweedFS collection and replication setting for the volume's data, passed on every upload. */
  collection?: string
  replication?: string
  /** Part size of rewrites (default 8 MiB); larger rewrites stream through a copy on the filer. */
  rewritePartBytes?: number
  /**
   * How long a metadata response of the filer is reused (default 1 s, 0 to ask every time). A change
   * made by another client of the filer shows after this time at the latest.
   */
  entryCacheMs?: number
}

/** Returns a file id for an entry without an inode: 52 bits of the path's SHA-256, above the root's id. */
function fileIdFromPath(path: string): number {
  const digest = createHash('sha256').update(path).digest()
  return digest.readUIntBE(0, 6) * 16 + (digest[6] >> 4) + 2
}

/** Returns the Unix seconds a SETATTR time requests, or `currentSec` when the time is not changed. */
function secondsToSet(time: SetTime | undefined, currentSec: number): number {
  if (time === undefined) return currentSec
  if (time.kind === 'server') return Math.floor(Date.now() / 1000)
  return time.sec
}

function statusText(response: FilerResponse): string {
  return `${response.status} ${response.body.toString('utf8').slice(0, 200)}`
}

export class SeaweedFsProvider implements StorageProvider {
  readonly kind = 'seaweedfs'
  readonly directoryTimesTrackEntries = false
  private readonly client: FilerClient
  private readonly rootPath: string
  private readonly logger: Logger
  private readonly listingPageSize: number
  private rootFileId = SEAWEEDFS_ROOT_FILE_ID
  private readonly placement: Record<string, string> = {}
  private readonly rewritePartBytes: number
  /** Changes to each file's content, by file id (see withFileLock). */
  private readonly fileQueue = new KeyedQueue<number>()
  private readonly entryCacheMs: number
  /** Metadata responses by filer path (see fetchEntry). */
  private readonly entryCache = new Map<string, { entry: FilerEntry | null; atMs: number }>()
  /** Counts the changes sent to the filer, so that fetchEntry can tell an overtaken response. */
  private changeCount = 0

  constructor(options: SeaweedFsProviderOptions) {
    this.client = new FilerClient({ filerUrl: options.filerUrl, logger: options.logger, timeoutMs: options.timeoutMs, retries: options.retries })
    this.rootPath = '/' + options.rootPath.split('/').filter((segment) => segment !== '').join('/')
    this.logger = options.logger
    this.listingPageSize = options.listingPageSize ?? DEFAULT_LISTING_PAGE_SIZE
    if (options.collection !== undefined) this.placement.collection = options.collection
    if (options.replication !== undefined) this.placement.replication = options.replication
    this.rewritePartBytes = options.rewritePartBytes ?? DEFAULT_REWRITE_PART_BYTES
    this.entryCacheMs = options.entryCacheMs ?? DEFAULT_ENTRY_CACHE_MS
  }

  // ------------------------------------------------------------------ paths and entries

  /**
   * Runs `step` after every earlier content change of the same file. An upload at offset 0
   * replaces the whole file on the filer, so a write at offset 0 that overtook a write further on
   * would drop it. Writes of one file therefore reach the filer one at a time.
   */
  private withFileLock<T>(fileId: number, step: () => Promise<T>): Promise<T> {
    return this.fileQueue.run(fileId, step)
  }

  private pathOf(node: FsalNode): string {
    const relative = node.path()
    if (relative === '/') return this.rootPath
    return this.rootPath === '/' ? relative : this.rootPath + relative
  }

  private childPathOf(dir: FsalNode, name: string): string {
    const parent = this.pathOf(dir)
    return parent === '/' ? `/${name}` : `${parent}/${name}`
  }

  /** Converts an entry, giving the root its stable id and an entry without inode one from its path. */
  private attributes(entry: FilerEntry, path: string): FileAttributes {
    const attributes = attributesOf(entry)
    if (path === this.rootPath) {
      attributes.fileId = this.rootFileId
      return attributes
    }
    // NOTE: an id derived from the path changes on rename, so handles of such objects go stale
    // when they move. Only filers that report inode 0 take this path.
    if (attributes.fileId === 0) attributes.fileId = fileIdFromPath(path)
    return attributes
  }

  /**
   * Fetches an entry's metadata; returns null when the path names nothing. Responses are reused for
   * entryCacheMs, because every NFS request looks its file up at least twice (the handle, then the
   * operation) and a sequential write would otherwise cost three requests instead of two. Every
   * change sent to the filer empties the cache (see sendChange).
   * NOTE: a file removed on the filer by another client is written again by a write that comes
   * within that time.
   */
  private async fetchEntry(path: string, what: string): Promise<FilerEntry | null> {
    const nowMs = Date.now()
    const cached = this.entryCache.get(path)
    if (cached !== undefined && nowMs - cached.atMs < this.entryCacheMs) return cached.entry

    const changeCount = this.changeCount
    const response = await this.client.send({ method: 'GET', path, query: { metadata: 'true' }, idempotent: true, what })
    let entry: FilerEntry | null = null
    if (response.status === 200) entry = parseFilerJson<FilerEntry>(response.body, what)
    else if (response.status !== 404) throw this.unexpected(what, response)

    // A response that a change overtook describes the file before the change, so it is not kept.
    if (changeCount === this.changeCount && this.entryCacheMs > 0) {
      if (this.entryCache.size >= ENTRY_CACHE_MAX_ENTRIES) this.entryCache.clear()
      this.entryCache.set(path, { entry, atMs: nowMs })
    }
    return entry
  }

  /** Sends a request that changes the filer, with the metadata cache emptied before and after it. */
  private async sendChange(request: FilerRequest): Promise<FilerResponse> {
    this.forgetEntries()
    try {
      return await this.client.send(request)
    } finally {
      this.forgetEntries()
    }
  }

  private forgetEntries(): void {
    this.changeCount++
    this.entryCache.clear()
  }

  private async stat(path: string, what: string): Promise<FileAttributes | null> {
    const entry = await this.fetchEntry(path, what)
    return entry === null ? null : this.attributes(entry, path)
  }

  private async statExisting(path: string, what: string): Promise<FileAttributes> {
    const attributes = await this.stat(path, what)
    if (attributes === null) throw new Stale(`${what}: ${path} no longer exists on the filer`)
    return attributes
  }

  /** Returns an IO error for a status the operation does not expect, and logs it. */
  private unexpected(what: string, response: FilerResponse): FsalError {
    if (response.status === 414) return new NameTooLong(`${what}: the filer rejected the name as too long`)
    const error = new FsalError('IO', `${what}: the filer responded ${statusText(response)}`)
    this.client.warn(what, error)
    return error
  }

  /**
   * Lists one directory page by page, in the filer's order (UTF-8 byte order), calling `onPage`
   * for each page. The filer pages by the last name seen, so a name added or removed meanwhile
   * does not shift the pages.
   */
  private async listPages(path: string, what: string, onPage: (entries: FilerEntry[]) => void | Promise<void>, pageSize = this.listingPageSize): Promise<void> {
    let lastFileName = ''
    for (;;) {
      const query: Record<string, string> = { limit: String(pageSize) }
      if (lastFileName !== '') query.lastFileName = lastFileName
      // The filer returns JSON only when Accept is exactly "application/json".
      const response = await this.client.send({ method: 'GET', path, query, headers: { Accept: 'application/json' }, idempotent: true, what })
      if (response.status === 404) throw new Stale(`${what}: ${path} no longer exists on the filer`)
      if (response.status !== 200) throw this.unexpected(what, response)

      const listing = parseFilerJson<FilerListing>(response.body, what)
      const entries = listing.Entries ?? []
      await onPage(entries)
      if (!listing.ShouldDisplayLoadMore || entries.length === 0) return
      lastFileName = listing.LastFileName
    }
  }

  private async isEmptyDirectory(path: string, what: string): Promise<boolean> {
    const response = await this.client.send({ method: 'GET', path, query: { limit: '1' }, headers: { Accept: 'application/json' }, idempotent: true, what })
    if (response.status !== 200) throw this.unexpected(what, response)
    const listing = parseFilerJson<FilerListing>(response.body, what)
    return (listing.Entries ?? []).length === 0
  }

  /**
   * Stores `data` at `offset` in the file at `path`. With offset > 0 and data the filer writes in
   * place and fills any gap with zeros. Offset 0 (or no data) replaces the whole file, with `mode`.
   */
  private async upload(path: string, offset: number, data: Buffer, mode: number, what: string, headers: Record<string, string> = {}): Promise<void> {
    const query: Record<string, string> = { ...this.placement, mode: mode.toString(8) }
    if (offset > 0) query.offset = String(offset)
    const response = await this.sendChange({
      method: 'PUT',
      path,
      query,
      headers: { 'Content-Type': 'application/octet-stream', ...headers },
      body: data,
      idempotent: false,
      what
    })
    if (response.status === 409) throw new NotDirectory(`${what}: a parent of ${path} is a file on the filer`)
    if (response.status !== 201 && response.status !== 200) throw this.unexpected(what, response)
  }

  /** Reads `length` bytes at `offset` with a ranged GET; fewer only past the end of the file. */
  private async readRange(path: string, offset: number, length: number, what: string): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0)
    const response = await this.client.send({
      method: 'GET',
      path,
      headers: { Range: `bytes=${offset}-${offset + length - 1}` },
      idempotent: true,
      what
    })
    if (response.status === 404) throw new Stale(`${what}: ${path} no longer exists on the filer`)
    // 416: the file shrank below the offset since its size was read.
    if (response.status === 416) return Buffer.alloc(0)
    if (response.status !== 206 && response.status !== 200) throw this.unexpected(what, response)
    return response.body
  }

  /**
   * Replaces the file with its first `keepBytes` bytes, `patch` written over them at offset 0, and
   * `mode`. The filer can only rewrite a file from offset 0 by replacing it, so this costs a
   * download and an upload of `keepBytes`. Replacing keeps the entry, and with it the inode that
   * clients' handles name. A file larger than one part streams through a copy (see streamRewrite).
   * NOTE: a write by another client that lands during the rewrite is lost.
   */
  private async rewrite(path: string, keepBytes: number, patch: Buffer, mode: number, what: string): Promise<void> {
    if (keepBytes <= this.rewritePartBytes) {
      const content = Buffer.alloc(Math.max(keepBytes, patch.length))
      const kept = await this.readRange(path, 0, keepBytes, what)
      kept.copy(content, 0)
      patch.copy(content, 0)
      await this.upload(path, 0, content, mode, what)
      return
    }
    await this.streamRewrite(path, keepBytes, patch, mode, what)
  }

  /**
   * Rewrites a file larger than one part, holding one part in memory at a time. The kept bytes are
   * copied part by part to a file under REWRITE_COPY_DIR. The first part (patched) then replaces
   * the file, and the other parts are written back in place from the copy. Until the last part is
   * back, the copy contains the whole content, so a failure leaves it there and logs its path.
   */
  private async streamRewrite(path: string, keepBytes: number, patch: Buffer, mode: number, what: string): Promise<void> {
    const copyPath = `${REWRITE_COPY_DIR}/${randomBytes(12).toString('hex')}`
    const part = this.rewritePartBytes
    const patched = (offset: number, data: Buffer): Buffer => {
      if (offset >= patch.length) return data
      const result = Buffer.alloc(Math.max(data.length, Math.min(patch.length - offset, part)))
      data.copy(result, 0)
      patch.copy(result, 0, offset, Math.min(patch.length, offset + result.length))
      return result
    }

    for (let offset = 0; offset < keepBytes; offset += part) {
      const data = await this.readRange(path, offset, Math.min(part, keepBytes - offset), what)
      await this.upload(copyPath, offset, data, 0o600, what)
    }
    this.logger.info({ path, copyPath, keepBytes }, `${what}: rewriting a file of ${keepBytes} bytes through a copy on the filer`)

    try {
      for (let offset = 0; offset < keepBytes; offset += part) {
        const data = await this.readRange(copyPath, offset, Math.min(part, keepBytes - offset), what)
        await this.upload(path, offset, patched(offset, data), mode, what)
      }
    } catch (error) {
      this.logger.error({ err: error, path, copyPath }, `${what}: rewrite failed part way; the whole earlier content is kept at ${copyPath} on the filer`)
      throw error
    }
    await this.deleteAt(copyPath, what)
  }

  // ------------------------------------------------------------------ StorageProvider

  async open(): Promise<FileAttributes> {
    const what = `open ${this.rootPath}`
    let entry = await this.fetchEntry(this.rootPath, what)
    if (entry === null) {
      this.logger.info({ rootPath: this.rootPath }, `creating the volume root ${this.rootPath} on the filer`)
      await this.mkdirAt(this.rootPath, 0o755, what)
      entry = await this.fetchEntry(this.rootPath, what)
      if (entry === null) throw new FsalError('IO', `${what}: the root is missing right after it was created`)
    }

    const attributes = attributesOf(entry)
    if (attributes.type !== 'dir') throw new NotDirectory(`${what}: ${this.rootPath} is not a directory on the filer`)
    if (attributes.fileId !== 0) this.rootFileId = attributes.fileId
    this.logger.info({ rootPath: this.rootPath, fileId: this.rootFileId }, 'SeaweedFS volume opened')
    return this.attributes(entry, this.rootPath)
  }

  async close(): Promise<void> {
    // Connections belong to fetch's global pool, which closes idle ones by itself.
  }

  async getattr(node: FsalNode): Promise<FileAttributes> {
    return this.statExisting(this.pathOf(node), `getattr ${node.path()}`)
  }

  async lookup(dir: FsalNode, name: string): Promise<FileAttributes> {
    const path = this.childPathOf(dir, name)
    const attributes = await this.stat(path, `lookup ${name} in ${dir.path()}`)
    if (attributes === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    return attributes
  }

  async readdir(dir: FsalNode): Promise<string[]> {
    const names: string[] = []
    await this.listPages(this.pathOf(dir), `readdir ${dir.path()}`, (entries) => {
      for (const entry of entries) names.push(entry.FullPath.slice(entry.FullPath.lastIndexOf('/') + 1))
    })
    return names
  }

  async lookupAll(dir: FsalNode, names: readonly string[]): Promise<Array<FileAttributes | null>> {
    // A few names cost fewer requests one by one; more cost fewer as one listing.
    if (names.length <= LOOKUP_ONE_BY_ONE_MAX) {
      return Promise.all(names.map((name) => this.stat(this.childPathOf(dir, name), `lookup ${name} in ${dir.path()}`)))
    }

    const found = new Map<string, FileAttributes>()
    await this.listPages(this.pathOf(dir), `readdir ${dir.path()}`, (entries) => {
      for (const entry of entries) {
        const name = entry.FullPath.slice(entry.FullPath.lastIndexOf('/') + 1)
        found.set(name, this.attributes(entry, entry.FullPath))
      }
    })
    return names.map((name) => found.get(name) ?? null)
  }

  async read(node: FsalNode, offset: number, length: number): Promise<ReadResult> {
    const what = `read ${node.path()}`
    const path = this.pathOf(node)
    const attributes = await this.statExisting(path, what)
    if (attributes.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    const end = Math.min(offset + length, attributes.sizeBytes)
    const data = end > offset ? await this.readRange(path, offset, end - offset, what) : Buffer.alloc(0)
    return { data, eof: offset + data.length >= attributes.sizeBytes, attributes, release: null }
  }

  async write(node: FsalNode, offset: number, data: Buffer, stable: StableHow): Promise<WriteResult> {
    return this.withFileLock(node.fileId, () => this.writeNow(node, offset, data, stable))
  }

  private async writeNow(node: FsalNode, offset: number, data: Buffer, _stable: StableHow): Promise<WriteResult> {
    const what = `write ${node.path()}`
    const path = this.pathOf(node)

    // An upload to a missing path creates a file, so a write to a removed file checks first
    // instead of bringing the file back.
    const current = await this.statExisting(path, what)
    if (current.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    if (offset > 0 && data.length > 0) {
      await this.upload(path, offset, data, current.mode, what)
    } else if (data.length > 0) {
      await this.writeAtStart(path, current, data, what)
    }

    return { count: data.length, committed: 2, attributes: await this.statExisting(path, what) }
  }

  /**
   * Writes at offset 0. The filer replaces the whole file on an upload at offset 0, so:
   * - a file no longer than the data is replaced by it (nothing of the old content survives);
   * - a file whose first byte already equals data[0] gets the rest written in place at offset 1,
   *   which keeps rewrites of a header with a fixed first byte cheap;
   * - any other file is rewritten whole (download, patch, upload), which costs its size.
   * A read-modify-write of only the first chunk is not possible over HTTP, because every upload
   * at offset 0 replaces the file's whole chunk list.
   */
  private async writeAtStart(path: string, current: FileAttributes, data: Buffer, what: string): Promise<void> {
    if (current.sizeBytes <= data.length) {
      await this.upload(path, 0, data, current.mode, what)
      return
    }

    const firstByte = await this.readRange(path, 0, 1, what)
    if (firstByte.length === 1 && firstByte[0] === data[0]) {
      if (data.length > 1) await this.upload(path, 1, data.subarray(1), current.mode, what)
      return
    }

    await this.rewrite(path, current.sizeBytes, data, current.mode, what)
  }

  async commit(node: FsalNode): Promise<FileAttributes> {
    return this.getattr(node)
  }

  async create(dir: FsalNode, name: string, mode: number, how: CreateMode): Promise<FileAttributes> {
    const what = `create ${name} in ${dir.path()}`
    const path = this.childPathOf(dir, name)

    // NOTE: guarded and exclusive creates are not atomic against other clients of the filer,
    // because its HTTP API has no create-if-absent. AegisFSAL orders the creates of one name
    // through this node, but a file created by another client between this check and the
    // upload is replaced.
    const existing = await this.stat(path, what)
    if (existing !== null) {
      if (how !== 'unchecked') throw new Exists(`${name} already exists in ${dir.path()}`)
      if (existing.type === 'dir') throw new IsDirectory(`${what}: ${name} is a directory`)
      return existing
    }

    await this.upload(path, 0, Buffer.alloc(0), mode & 0o777, what)
    return this.statExisting(path, what)
  }

  /** Creates a directory: a POST without Content-Type to the path with a trailing "/". */
  private async mkdirAt(path: string, mode: number, what: string): Promise<void> {
    const response = await this.sendChange({ method: 'POST', path, trailingSlash: true, query: { mode: mode.toString(8) }, idempotent: false, what })
    if (response.status === 409) {
      const body = response.body.toString('utf8')
      if (body.includes('already exists')) throw new Exists(`${what}: the name already exists`)
      throw new NotDirectory(`${what}: a parent is a file on the filer`)
    }
    if (response.status !== 201 && response.status !== 200) throw this.unexpected(what, response)
  }

  async mkdir(dir: FsalNode, name: string, mode: number): Promise<FileAttributes> {
    const what = `mkdir ${name} in ${dir.path()}`
    const path = this.childPathOf(dir, name)
    await this.mkdirAt(path, mode & 0o777, what)
    return this.statExisting(path, what)
  }

  async symlink(dir: FsalNode, name: string, _target: Buffer, _mode: number): Promise<FileAttributes> {
    throw new NotSupported(`symlink ${name} in ${dir.path()}: SeaweedFS volumes do not support symbolic links`)
  }

  async readlink(node: FsalNode): Promise<Buffer> {
    throw new NotSupported(`readlink ${node.path()}: SeaweedFS volumes do not support symbolic links`)
  }

  async link(_node: FsalNode, dir: FsalNode, name: string): Promise<FileAttributes> {
    throw new NotSupported(`link ${name} in ${dir.path()}: SeaweedFS volumes do not support hard links`)
  }

  /** Deletes without `recursive`, so the filer refuses a non-empty directory instead of emptying it. */
  private async deleteAt(path: string, what: string): Promise<void> {
    const response = await this.sendChange({ method: 'DELETE', path, idempotent: false, what })
    if (response.status === 204 || response.status === 200) return
    if (response.status === 500 && response.body.toString('utf8').includes('non-empty')) throw new NotEmpty(`${what}: the directory is not empty`)
    throw this.unexpected(what, response)
  }

  async remove(dir: FsalNode, name: string): Promise<FileAttributes> {
    const what = `remove ${name} in ${dir.path()}`
    const path = this.childPathOf(dir, name)
    const attributes = await this.stat(path, what)
    if (attributes === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    if (attributes.type === 'dir') throw new IsDirectory(`${what}: is a directory`)

    await this.deleteAt(path, what)
    attributes.nlink = 0
    return attributes
  }

  async rmdir(dir: FsalNode, name: string): Promise<FileAttributes> {
    const what = `rmdir ${name} in ${dir.path()}`
    const path = this.childPathOf(dir, name)
    const attributes = await this.stat(path, what)
    if (attributes === null) throw new NotFound(`${name} not found in ${dir.path()}`)
    if (attributes.type !== 'dir') throw new NotDirectory(`${what}: not a directory`)
    if (!(await this.isEmptyDirectory(path, what))) throw new NotEmpty(`${what}: the directory is not empty`)

    await this.deleteAt(path, what)
    attributes.nlink = 0
    return attributes
  }

  async rename(fromDir: FsalNode, fromName: string, toDir: FsalNode, toName: string): Promise<FileAttributes | null> {
    const what = `rename ${fromName} in ${fromDir.path()} to ${toName} in ${toDir.path()}`
    const fromPath = this.childPathOf(fromDir, fromName)
    const toPath = this.childPathOf(toDir, toName)

    const source = await this.stat(fromPath, what)
    if (source === null) throw new NotFound(`${fromName} not found in ${fromDir.path()}`)
    if (fromPath === toPath) return null
    if (toPath.startsWith(`${fromPath}/`)) throw new InvalidArgument(`${what}: cannot move a directory into itself`)

    const target = await this.stat(toPath, what)
    if (target !== null) {
      if (source.type === 'dir' && target.type !== 'dir') throw new NotDirectory(`${what}: cannot replace a file with a directory`)
      if (source.type !== 'dir' && target.type === 'dir') throw new IsDirectory(`${what}: cannot replace a directory with a file`)
      if (target.type === 'dir' && !(await this.isEmptyDirectory(toPath, what))) throw new NotEmpty(`${what}: the target directory is not empty`)
    }

    // The filer rejects a destination whose parent path merely starts with the source path
    // ("/v/a" to "/v/ab/x"), because it compares plain strings. Such a rename goes through a
    // temporary name in the source directory.
    // NOTE: that rename takes two steps, so a failure between them leaves the object under a
    // name starting with ".aegis-rename-".
    const toParent = toPath.slice(0, toPath.lastIndexOf('/'))
    if (toParent.startsWith(fromPath)) {
      const temporaryPath = this.childPathOf(fromDir, `.aegis-rename-${randomBytes(8).toString('hex')}`)
      await this.move(fromPath, temporaryPath, what)
      await this.move(temporaryPath, toPath, what)
    } else {
      await this.move(fromPath, toPath, what)
    }

    if (target === null) return null
    target.nlink = 0
    return target
  }

  /** Moves an entry with `mv.from`; the filer replaces a compatible target atomically. */
  private async move(fromPath: string, toPath: string, what: string): Promise<void> {
    const response = await this.sendChange({ method: 'POST', path: toPath, query: { 'mv.from': fromPath }, idempotent: false, what })
    if (response.status === 204 || response.status === 200) return
    const body = response.body.toString('utf8')
    if (response.status === 400 && body.includes('no entry is found')) throw new NotFound(`${what}: the source is gone`)
    if (response.status === 400 && body.includes('non-empty')) throw new NotEmpty(`${what}: the target directory is not empty`)
    if (response.status === 400 && body.includes('subdirectory of itself')) throw new InvalidArgument(`${what}: cannot move a directory into itself`)
    throw this.unexpected(what, response)
  }

  /**
   * Applies a size change and, where the filer allows it, mode and time changes. An upload that
   * replaces a file sets its mode and stored headers, which is free for an empty file, so:
   * - a mode change works on an empty file, and fails with NotSupported on any other object
   *   (a file's content would have to be rewritten, and a directory has no such request);
   * - times set by the client on an empty file are stored in a header and reported while the
   *   file stays empty, which keeps the verifier of an exclusive CREATE. On other objects the
   *   filer's own times stay, and the request still succeeds.
   */
  async setattr(node: FsalNode, changes: SetAttributes): Promise<FileAttributes> {
    return this.withFileLock(node.fileId, () => this.setattrNow(node, changes))
  }

  private async setattrNow(node: FsalNode, changes: SetAttributes): Promise<FileAttributes> {
    const what = `setattr ${node.path()}`
    const path = this.pathOf(node)
    let current = await this.statExisting(path, what)

    const mode = changes.mode === undefined ? current.mode : changes.mode & 0o777
    const sizeBytes = changes.sizeBytes
    if (sizeBytes !== undefined && sizeBytes !== current.sizeBytes) {
      if (current.type !== 'file') throw new InvalidArgument(`${what}: cannot set the size of a ${current.type}`)
      await this.resize(path, current.sizeBytes, sizeBytes, mode, what)
      current = await this.statExisting(path, what)
    }

    const clientTimes = this.clientTimes(current, changes)
    if (mode === current.mode && clientTimes === null) return current
    if (current.type !== 'file' || current.sizeBytes !== 0) {
      if (mode === current.mode) return current
      throw new NotSupported(`${what}: SeaweedFS volumes cannot change the mode of a non-empty file or a directory`)
    }

    const headers: Record<string, string> = clientTimes === null ? {} : { [CLIENT_TIMES_HEADER]: clientTimes }
    await this.upload(path, 0, Buffer.alloc(0), mode, what, headers)
    return this.statExisting(path, what)
  }

  /** Returns "<atime>:<mtime>" when the changes set a time of an empty file, null otherwise. */
  private clientTimes(current: FileAttributes, changes: SetAttributes): string | null {
    if (changes.atime === undefined && changes.mtime === undefined) return null
    if (current.type !== 'file' || current.sizeBytes !== 0) return null
    return `${secondsToSet(changes.atime, current.atimeSec)}:${secondsToSet(changes.mtime, current.mtimeSec)}`
  }

  /**
   * Changes a file's size. Extending writes one zero byte at the new end, and the filer reads the
   * gap as zeros. Truncating to 0 replaces the file with an empty one. Any other truncation
   * rewrites the kept part, which costs its size.
   */
  private async resize(path: string, currentBytes: number, sizeBytes: number, mode: number, what: string): Promise<void> {
    if (sizeBytes > currentBytes) {
      const lastOffset = sizeBytes - 1
      if (lastOffset > 0) await this.upload(path, lastOffset, Buffer.alloc(1), mode, what)
      else await this.upload(path, 0, Buffer.alloc(1), mode, what)
      return
    }
    if (sizeBytes === 0) {
      await this.upload(path, 0, Buffer.alloc(0), mode, what)
      return
    }
    await this.rewrite(path, sizeBytes, Buffer.alloc(0), mode, what)
  }

  async fsstat(): Promise<FsStat> {
    return {
      totalBytes: REPORTED_CAPACITY_BYTES,
      freeBytes: REPORTED_CAPACITY_BYTES,
      availableBytes: REPORTED_CAPACITY_BYTES,
      totalFiles: REPORTED_FILES,
      freeFiles: REPORTED_FILES,
      availableFiles: REPORTED_FILES
    }
  }

  async scan(root: FsalNode, visit: ScanVisitor): Promise<void> {
    const pending: FsalNode[] = [root]
    while (pending.length > 0) {
      const dir = pending.pop()!
      try {
        await this.listPages(this.pathOf(dir), `scan ${dir.path()}`, (entries) => {
          for (const entry of entries) {
            const name = entry.FullPath.slice(entry.FullPath.lastIndexOf('/') + 1)
            const child = visit(dir, name, this.attributes(entry, entry.FullPath))
            if (child.type === 'dir') pending.push(child)
          }
        })
      } catch (error) {
        // A directory removed while the walk runs is skipped, as the host providers do.
        if (error instanceof Stale && dir !== root) continue
        throw error
      }
    }
  }

  forget(_node: FsalNode): void {
    // The provider keeps no state per node.
  }
}
